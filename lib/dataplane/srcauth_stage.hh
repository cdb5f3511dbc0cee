#pragma once
/// Source authentication on the data plane (issue [D], docs/source-auth.md): per worker lcore, a
/// lib/srcauth sender per outbound source_auth block and a verifier per inbound one, made on the
/// control core (make_srcauth_lcore) and used only by their worker.
///
///   outbound: classify -> encapsulate with room for the tag -> tag the burst -> seal -> tx;
///             control messages (bootstrap, disclosure, manifest) follow on the sender's own
///             schedule, sealed with the SA of its last data packet (control_tick).
///   inbound:  open -> RFC 5374 checks -> classify -> policy + replay -> verify -> strip -> tx;
///             held packets come back through control_tick (drain) and go to tx then.
///
/// Sender ids on the wire are key id (24 bits of the signing key's hash) << 8 | worker index: a
/// verifier binds a packet's source address to the trust entry of that key, so a member holding
/// the group key cannot pass its own tags off as another source's.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/burst.hh"
#include "common/drop_reason.hh"
#include "common/result.hh"
#include "config/config.hh"
#include "srcauth/manifest.hh"
#include "srcauth/signed.hh"
#include "srcauth/tesla.hh"
#include "srcauth_signer.hh"

namespace msecgw::dataplane {

inline constexpr uint16_t max_auth_lanes = 16; ///< worker lcores of a tagging gateway

/// The wire sender id of worker `lane` signing with the key of `key_id`.
constexpr uint32_t auth_sender_id(uint32_t key_id, uint16_t lane) { return key_id << 8 | lane; }

/// Where a sender's control messages go, learnt from its last tagged packet: its link-layer
/// header, its inner IP header (the outer one is made from it, RFC 5374), the SA and the binding.
struct auth_route {
    bool known = false;
    uint8_t family = 4;
    uint16_t l3_off = 14;
    std::array<uint8_t, 18> l2{};
    std::array<uint8_t, 40> ip{};
    uint32_t sa_index = 0; ///< in dp_state::out_sas; valid while that SA's uid is sa_uid
    uint32_t sa_uid = 0;
    uint16_t binding = 0;  ///< index into lcore_ctx::bindings
};

/// One outbound source_auth block on one worker.
struct auth_sender {
    config::source_auth_mode mode;
    srcauth::signer signer;
    std::optional<srcauth::tesla_sender> tesla;
    std::optional<srcauth::manifest_sender> manifest;
    std::optional<srcauth::sign_sender> sign;
    uint64_t bootstrap_period_ns = 0;
    uint64_t next_bootstrap_ns = 0;  ///< 0: none sent yet
    uint32_t disclosed_interval = 0; ///< interval of the last disclosure
    uint64_t next_disclosure_ns = 0; ///< when the disclosure of this interval is sent again
    auth_route route;
    bool sign_on_worker = false;     ///< manifests: signed here, not by the signing thread

    uint16_t header_len() const;
    uint16_t trailer_len() const { return mode == config::source_auth_mode::sign ? srcauth::wire::sig_len : 0; }
};

/// A trust entry: sources in `sender` sign with the key of `key_id`.
struct auth_trust {
    config::ip_prefix sender;
    uint32_t key_id = 0;
};

/// One inbound source_auth block on one worker.
struct auth_verifier {
    config::source_auth_mode mode;
    std::vector<auth_trust> trust;
    std::optional<srcauth::tesla_verifier> tesla;
    std::optional<srcauth::manifest_verifier> manifest;
    std::optional<srcauth::sign_verifier> sign;

    /// True when a trust entry for the key of `sender` covers source address `src` (family 4/6).
    bool binds(uint32_t sender, const uint8_t* src, uint8_t family) const;
};

struct srcauth_lcore {
    std::vector<std::unique_ptr<auth_sender>> senders;     ///< by slot; null: no sender here
    std::vector<std::unique_ptr<auth_verifier>> verifiers; ///< by slot; null: no verifier here
    uint64_t now_ns = 0;                                   ///< CLOCK_REALTIME, once per poll round
    sign_lane* signing = nullptr;                          ///< to the manifest signing thread (null: none)
    // per-burst scratch
    std::array<srcauth::tag_job, max_burst> jobs;
    std::array<uint16_t, max_burst> job_slot;
    std::array<srcauth::packet_view, max_burst> views;
    std::array<srcauth::decision, max_burst> decisions;
    std::array<srcauth::settled, max_burst> settled;
    std::array<uint8_t, max_burst> ok;
};

/// Control core: the senders and verifiers of worker `lane` for every source_auth block of `cfg`
/// whose SAs it has (outbound: a sender; inbound: a verifier; groups: both). Key files are
/// loaded here; errors name file:line and the key file, never key material.
result<std::unique_ptr<srcauth_lcore>> make_srcauth_lcore(const config::gateway_cfg& cfg, crypto::engine& e,
                                                          uint16_t lane, uint64_t now_ns);

/// The drop reason of a verifier's reason.
drop_reason to_drop_reason(srcauth::reason r);

/// CLOCK_REALTIME in ns (vDSO: no system call). TESLA needs sender and verifier clocks in step.
uint64_t realtime_ns();

} // namespace msecgw::dataplane
