#include "srcauth/outcome.hh"

namespace msecgw::srcauth {

std::string_view to_string(reason r)
{
    switch (r) {
    case reason::none: return "none";
    case reason::malformed: return "malformed";
    case reason::unknown_sender: return "unknown_sender";
    case reason::wrong_mode: return "wrong_mode";
    case reason::not_bootstrapped: return "not_bootstrapped";
    case reason::forged: return "forged";
    case reason::unsafe: return "unsafe";
    case reason::bad_interval: return "bad_interval";
    case reason::overflow: return "overflow";
    case reason::timeout: return "timeout";
    case reason::replayed_manifest: return "replayed_manifest";
    case reason::replayed_packet: return "replayed_packet";
    case reason::bad_signature: return "bad_signature";
    case reason::bad_disclosure: return "bad_disclosure";
    case reason::stale_control: return "stale_control";
    case reason::chain_replaced: return "chain_replaced";
    case reason::count_: break;
    }
    return "unknown";
}

} // namespace msecgw::srcauth
