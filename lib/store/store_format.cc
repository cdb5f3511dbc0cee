#include "store_format.hh"

#include <array>
#include <charconv>

#include "store.hh"

namespace msecgw::store {

namespace {

constexpr std::array<uint32_t, 256> make_crc_table()
{
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
        t[i] = c;
    }
    return t;
}

constexpr std::array<uint32_t, 256> crc_table = make_crc_table();

} // namespace

uint32_t crc32_ieee(std::string_view bytes)
{
    uint32_t c = 0xffffffffu;
    for (const char ch : bytes) {
        c = crc_table[(c ^ static_cast<uint8_t>(ch)) & 0xff] ^ (c >> 8);
    }
    return c ^ 0xffffffffu;
}

namespace detail {

namespace {

constexpr std::string_view magic = "msecgw-iv-store";
constexpr std::string_view version = "v1";
constexpr std::string_view crc_prefix = "crc32 ";

error fail(std::string what) { return error{errc::io, std::move(what)}; }

error fail_at(size_t line, std::string what) { return fail("line " + std::to_string(line) + ": " + what); }

/// Canonical decimal: digits only, no leading zero except "0" itself, fits 64 bits.
bool parse_u64(std::string_view s, uint64_t& out)
{
    if (s.empty() || (s.size() > 1 && s[0] == '0')) {
        return false;
    }
    for (const char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

/// Exactly 8 lowercase hex digits.
bool parse_hex32(std::string_view s, uint32_t& out)
{
    if (s.size() != 8) {
        return false;
    }
    out = 0;
    for (const char c : s) {
        const bool digit = c >= '0' && c <= '9';
        if (!digit && !(c >= 'a' && c <= 'f')) {
            return false;
        }
        out = out << 4 | static_cast<uint32_t>(digit ? c - '0' : c - 'a' + 10);
    }
    return true;
}

/// Splits a line on single spaces; empty fields (double or edge spaces) are kept so they fail.
std::vector<std::string_view> fields(std::string_view line)
{
    std::vector<std::string_view> out;
    size_t pos = 0;
    for (;;) {
        const size_t sp = line.find(' ', pos);
        out.push_back(line.substr(pos, sp == std::string_view::npos ? sp : sp - pos));
        if (sp == std::string_view::npos) {
            return out;
        }
        pos = sp + 1;
    }
}

std::vector<std::string_view> split_lines(std::string_view body)
{
    std::vector<std::string_view> lines;
    while (!body.empty()) {
        const size_t nl = body.find('\n');
        lines.push_back(body.substr(0, nl));
        body.remove_prefix(nl + 1); // body ends with '\n', so nl is never npos here
    }
    return lines;
}

/// Magic and version (checked before the checksum, for a clear message on foreign files).
result<void> check_header(std::string_view text)
{
    const std::string_view first = text.substr(0, text.find('\n'));
    const std::vector<std::string_view> f = fields(first);
    if (f.size() != 2 || f[0] != magic) {
        return fail_at(1, "bad magic (not an msecgw IV store)");
    }
    if (f[1] != version) {
        return fail_at(1, "unsupported version '" + std::string(f[1]) + "' (this build reads v1)");
    }
    return {};
}

std::string hex8(uint32_t v)
{
    std::string out(8, '0');
    for (size_t i = 8; i-- > 0; v >>= 4) {
        out[i] = "0123456789abcdef"[v & 0xf];
    }
    return out;
}

/// Verifies that the last line is a matching checksum; returns the bytes it covers. `text` ends
/// with '\n' and its first line is the header.
result<std::string_view> check_crc(std::string_view text)
{
    const size_t prev_nl = text.rfind('\n', text.size() - 2);
    if (prev_nl == std::string_view::npos) {
        return fail("truncated: nothing after the header");
    }
    const std::string_view line = text.substr(prev_nl + 1, text.size() - prev_nl - 2);
    uint32_t stored = 0;
    if (line.substr(0, crc_prefix.size()) != crc_prefix || !parse_hex32(line.substr(crc_prefix.size()), stored)) {
        return fail("truncated or damaged: last line is not 'crc32 <8 lowercase hex digits>'");
    }
    const std::string_view body = text.substr(0, prev_nl + 1);
    const uint32_t computed = crc32_ieee(body);
    if (computed != stored) {
        return fail("checksum mismatch (file says " + hex8(stored) + ", content has " + hex8(computed) + ")");
    }
    return body;
}

result<void> parse_lcore(std::string_view line, size_t lineno, file_state& s)
{
    const std::vector<std::string_view> f = fields(line);
    uint64_t index = 0;
    uint64_t hw = 0;
    if (f.size() != 3 || f[0] != "lcore" || !parse_u64(f[1], index) || !parse_u64(f[2], hw)) {
        return fail_at(lineno, "expected 'lcore <index> <high_water>'");
    }
    if (index != s.high_water.size()) {
        const bool dup = index < s.high_water.size();
        return fail_at(lineno, (dup ? "duplicate lcore " : "lcore out of order: ") + std::to_string(index) +
                                   (dup ? "" : ", expected " + std::to_string(s.high_water.size())));
    }
    if (index >= iv_store::max_lcores) {
        return fail_at(lineno, "too many lcores (max " + std::to_string(iv_store::max_lcores) + ")");
    }
    if (hw > s.limit) {
        return fail_at(lineno, "high-water " + std::to_string(hw) + " exceeds limit " + std::to_string(s.limit));
    }
    s.high_water.push_back(hw);
    return {};
}

result<void> parse_body(const std::vector<std::string_view>& lines, file_state& s)
{
    if (lines.size() < 4) {
        return fail("truncated: " + std::to_string(lines.size()) + " lines before the checksum, need 4 or more");
    }
    const std::vector<std::string_view> sa = fields(lines[1]);
    if (sa.size() != 2 || sa[0] != "sa" || !valid_sa_id(sa[1])) {
        return fail_at(2, "expected 'sa <id>'");
    }
    s.sa_id = std::string(sa[1]);
    const std::vector<std::string_view> lim = fields(lines[2]);
    if (lim.size() != 2 || lim[0] != "limit" || !parse_u64(lim[1], s.limit) || s.limit == 0) {
        return fail_at(3, "expected 'limit <n>' with n >= 1");
    }
    for (size_t i = 3; i < lines.size(); ++i) {
        result<void> r = parse_lcore(lines[i], i + 1, s);
        if (!r) {
            return r;
        }
    }
    return {};
}

} // namespace

bool valid_sa_id(std::string_view id)
{
    if (id.empty() || id.size() > iv_store::max_sa_id_length) {
        return false;
    }
    for (const char c : id) {
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

std::string serialize(const file_state& s)
{
    std::string out;
    out.append(magic).append(" ").append(version).append("\n");
    out.append("sa ").append(s.sa_id).append("\n");
    out.append("limit ").append(std::to_string(s.limit)).append("\n");
    for (size_t i = 0; i < s.high_water.size(); ++i) {
        out.append("lcore ").append(std::to_string(i)).append(" ").append(std::to_string(s.high_water[i])).append("\n");
    }
    const std::string crc = hex8(crc32_ieee(out)); // before the crc line is appended
    out.append(crc_prefix).append(crc).append("\n");
    return out;
}

result<file_state> parse(std::string_view text)
{
    if (text.empty()) {
        return fail("empty file");
    }
    if (text.back() != '\n') {
        return fail("truncated: does not end with a newline");
    }
    if (result<void> r = check_header(text); !r) {
        return r.err();
    }
    result<std::string_view> body = check_crc(text);
    if (!body) {
        return body.err();
    }
    file_state s;
    if (result<void> r = parse_body(split_lines(*body), s); !r) {
        return r.err();
    }
    return s;
}

} // namespace detail

} // namespace msecgw::store
