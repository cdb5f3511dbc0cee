#include "srcauth/wire.hh"

namespace msecgw::srcauth::wire {

std::string_view to_string(msg_type t)
{
    switch (t) {
    case msg_type::tesla_data: return "tesla_data";
    case msg_type::manifest_data: return "manifest_data";
    case msg_type::signed_data: return "signed_data";
    case msg_type::tesla_bootstrap: return "tesla_bootstrap";
    case msg_type::tesla_disclosure: return "tesla_disclosure";
    case msg_type::manifest: return "manifest";
    }
    return "unknown";
}

namespace {

/// Fixed length of each type; 0 for the manifest, whose length depends on its count.
size_t fixed_length(msg_type t)
{
    switch (t) {
    case msg_type::tesla_data: return tesla_data_len;
    case msg_type::manifest_data: return manifest_data_len;
    case msg_type::signed_data: return signed_data_len;
    case msg_type::tesla_bootstrap: return tesla_bootstrap_len;
    case msg_type::tesla_disclosure: return tesla_disclosure_len;
    case msg_type::manifest: return 0;
    }
    return 0;
}

} // namespace

bool parse_common(const uint8_t* p, size_t len, common& out)
{
    if (p == nullptr || len < common_len || (p[off_type] >> 4) != version) {
        return false;
    }
    const uint8_t t = p[off_type] & 0x0f;
    if (t < uint8_t(msg_type::tesla_data) || t > uint8_t(msg_type::manifest)) {
        return false;
    }
    out.type = msg_type(t);
    out.next = p[off_next];
    out.length = load_be16(p + off_length);
    out.sender = load_be32(p + off_sender);
    out.seq = load_be64(p + off_seq);
    const bool control = out.type == msg_type::tesla_bootstrap || out.type == msg_type::tesla_disclosure ||
                         out.type == msg_type::manifest;
    if (out.length > len || control != (out.next == next_none)) {
        return false;
    }
    if (out.type == msg_type::manifest) {
        return out.length >= mf_digests + sig_len && out.length == manifest_len(load_be16(p + mf_count));
    }
    return out.length == fixed_length(out.type);
}

} // namespace msecgw::srcauth::wire
