#pragma once
/// Output helpers of the CLI: aligned tables (testpmd-like) and a small JSON writer. Control
/// core only.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace msecgw::cli {

/// Columns padded to their widest cell; numbers (cells starting with a digit) right-aligned.
class table {
public:
    explicit table(std::vector<std::string> header) : _header(std::move(header)) {}
    void row(std::vector<std::string> cells) { _rows.push_back(std::move(cells)); }
    bool empty() const { return _rows.empty(); }
    std::string str() const;

private:
    std::vector<std::string> _header;
    std::vector<std::vector<std::string>> _rows;
};

/// "name: value" lines with the values aligned.
class fields {
public:
    void add(std::string_view name, std::string value) { _items.emplace_back(std::string(name), std::move(value)); }
    void add(std::string_view name, uint64_t value) { add(name, std::to_string(value)); }
    std::string str() const;

private:
    std::vector<std::pair<std::string, std::string>> _items;
};

/// JSON text built in order: obj()/arr() open, end() closes; key() before a value inside objects.
class json {
public:
    json& obj();
    json& arr();
    json& end();
    json& key(std::string_view k);
    json& str(std::string_view v);
    json& num(uint64_t v);
    json& num_signed(int64_t v);
    json& real(double v);
    json& boolean(bool v);
    json& null();
    json& kv(std::string_view k, std::string_view v) { return key(k).str(v); }
    json& kv(std::string_view k, const char* v) { return key(k).str(v); }
    json& kv(std::string_view k, uint64_t v) { return key(k).num(v); }
    std::string take() { return std::move(_out) + "\n"; }

private:
    void comma();
    std::string _out;
    std::vector<bool> _first; ///< per open container: no element yet
    std::string _close;       ///< per open container: its closing bracket
    bool _after_key = false;
};

std::string hex32(uint32_t v); ///< "0x00001001"

/// A word the operator typed, fit to be echoed in a message: as typed, unless it could hold key
/// material (12 or more hex digits in a row, or longer than 64 characters): then withheld.
std::string shown(std::string_view word);

} // namespace msecgw::cli
