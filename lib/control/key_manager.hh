#pragma once
/// Group key management on the control core (RFC 9838): the embedded key server (GCKS) when the
/// configuration has `key_server`, and one G-IKEv2 group member per group that this gateway's
/// policies name when it has a `member` entry for the group's region (each region's groups register
/// with that region's key server). It turns the members' keys into the SAs the data plane
/// runs (expand()), timed so that a rekey is make-before-break:
///
///   new TEK arrives ──► inbound SA installed at once (every receiver can open it)
///        + activation_delay ──► outbound switches to it (all members had time to install it)
///        + deactivation_delay ──► the previous TEK's inbound SA is removed
///
/// Workers never wait for any of this: the SAs reach them through sa_manager's RCU snapshot.
/// Control core only; not thread-safe. Never logs key material.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hh"
#include "config/config.hh"
#include "gkm/gkm.hh"

namespace msecgw::control {

/// One group as this gateway's member sees it (CLI, metrics, logs; no key material).
struct member_status {
    std::string group;
    uint32_t group_id = 0;
    std::string key_server;               ///< address:port registrations go to now
    gkm::member_state state = gkm::member_state::idle;
    bool sender = false;                  ///< this gateway asked for a Sender-ID
    std::optional<uint32_t> sender_id;
    uint8_t sender_id_bits = 0;
    std::optional<uint32_t> out_spi;      ///< the TEK outbound packets are sealed with
    std::vector<uint32_t> in_spis;        ///< TEKs inbound packets are opened with, newest first
    uint64_t registrations = 0;           ///< times the member reached `registered` from another state
    uint64_t key_changes = 0;             ///< times the SAs derived from this group changed
    gkm::member_counters counters;
    std::string last_error;
};

class key_manager {
public:
    using clock = std::chrono::steady_clock;

    /// Starts the key server (if configured) and, when `member_role`, a member per group the
    /// policies name (registration begins at once; it retries by itself).
    static result<std::unique_ptr<key_manager>> create(const config::gateway_cfg& cfg, bool member_role,
                                                       clock::time_point now);
    ~key_manager();
    key_manager(const key_manager&) = delete;
    key_manager& operator=(const key_manager&) = delete;

    /// Drives the key server and the members; true when expand() now gives other SAs (a key
    /// arrived, an activation or deactivation delay ran out, a Sender-ID changed).
    bool tick(clock::time_point now);

    /// `cfg` with the groups' SAs: an inbound SA per TEK held, the outbound SA (with our
    /// Sender-ID) of the active TEK, and every `group` policy naming them (inbound twins for the
    /// overlap). Whatever an earlier expand() added is replaced, so the result of expand() can be
    /// edited (CLI) and expanded again.
    config::gateway_cfg expand(const config::gateway_cfg& cfg) const;

    /// On-demand rekey of a group by the embedded key server.
    result<void> rekey(std::string_view group);

    bool has_key_server() const { return _gcks != nullptr; }
    const gkm::gcks* key_server() const { return _gcks.get(); }
    /// The key server's view of a group (no key material).
    std::optional<gkm::group_status> key_server_group(std::string_view group) const;
    std::vector<member_status> members() const;
    /// The groups of the configuration (name, id), for listings.
    const std::vector<config::group_cfg>& groups() const { return _groups; }

private:
    struct member_rt;
    key_manager() = default;
    void tick_member(member_rt& m, clock::time_point now);
    void tick_key_server(clock::time_point now);

    std::vector<config::group_cfg> _groups;
    std::unique_ptr<gkm::gcks> _gcks;
    std::vector<std::unique_ptr<member_rt>> _members;
};

/// `cfg` without what key_manager::expand added: generated SAs and twin policies removed, group
/// policies naming no SA. What the operator configured (file and CLI edits).
config::gateway_cfg strip_group_sas(const config::gateway_cfg& cfg);

} // namespace msecgw::control
