#pragma once
/// What a verifier says about each packet, the reasons it drops one, and its counters.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace msecgw::srcauth {

enum class verdict : uint8_t {
    release,  ///< authenticated: forward it
    hold,     ///< kept by the verifier; it comes back later through drain()
    drop,     ///< free it; `why` says why
    consumed, ///< a control message (bootstrap, disclosure, manifest) used by the verifier: free it
};

/// Why a verifier refused a packet or a control message. Each has a counter.
enum class reason : uint8_t {
    none,
    malformed,          ///< header does not parse, wrong length or reserved bits set
    unknown_sender,     ///< no sender with this id is configured on this verifier
    wrong_mode,         ///< message type of another mode than the sender's policy
    not_bootstrapped,   ///< TESLA packet before a verified bootstrap for its sender
    forged,             ///< MAC or manifest digest does not match
    unsafe,             ///< TESLA: its key may already have been disclosed when it arrived
    bad_interval,       ///< TESLA: interval outside the chain or ahead of the sender's clock
    overflow,           ///< hold buffer of the sender full
    timeout,            ///< held longer than the policy's hold timeout (no key / no manifest)
    replayed_manifest,  ///< manifest sequence number not above the last accepted one
    replayed_packet,    ///< sequence number already released (or left of the window)
    bad_signature,      ///< signature (packet, manifest or bootstrap) does not verify
    bad_disclosure,     ///< disclosed TESLA key not on the chain (the carrying packet is still judged)
    stale_control,      ///< bootstrap or disclosure older than what is known (harmless, consumed)
    chain_replaced,     ///< held under a chain a newer signed bootstrap replaced
    count_,
};
inline constexpr size_t reason_count = size_t(reason::count_);
std::string_view to_string(reason r);

/// One decision per input packet.
struct decision {
    verdict v;
    reason why;
};

/// A packet as the verifier and sender see it: `data` points at the source-authentication header,
/// `len` covers header, inner packet and (signed_data) trailer. `handle` is the caller's (an mbuf).
/// The TESLA verifier may rewrite header bytes while it checks a MAC; it restores them before the
/// packet is settled (see mac_slide in tesla.cc), so a released packet is unchanged.
struct packet_view {
    uint8_t* data;
    uint32_t len;
    void* handle;
};

/// A held packet that was decided later.
struct settled {
    void* handle;
    verdict v; ///< release or drop
    reason why;
};

/// Per-verifier counters (one verifier per lcore: plain integers).
struct counters {
    uint64_t released = 0;
    uint64_t released_unverified = 0; ///< manifest best-effort: released at timeout without a manifest
    uint64_t held = 0;                ///< packets that entered the hold buffer
    uint64_t control_accepted = 0;    ///< bootstraps, disclosures and manifests that verified
    std::array<uint64_t, reason_count> dropped{};
    uint64_t drops(reason r) const { return dropped[size_t(r)]; }
};

} // namespace msecgw::srcauth
