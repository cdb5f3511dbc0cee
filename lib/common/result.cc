#include "result.hh"

namespace msecgw {

std::string_view to_string(errc e)
{
    switch (e) {
    case errc::config_syntax: return "config syntax error";
    case errc::config_unknown_key: return "unknown key";
    case errc::config_missing_key: return "missing key";
    case errc::config_bad_value: return "bad value";
    case errc::config_reference: return "dangling reference";
    case errc::config_duplicate: return "duplicate";
    case errc::io: return "I/O error";
    case errc::dpdk: return "DPDK error";
    case errc::unsupported: return "unsupported";
    }
    return "unknown error";
}

} // namespace msecgw
