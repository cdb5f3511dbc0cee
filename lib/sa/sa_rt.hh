#pragma once
/// Data-plane runtime of SAs. Built on the control core from config::sa_cfg, published to the
/// workers inside an RCU snapshot (dataplane::dp_state), immutable after publication except for
/// the per-worker lanes: lane k is written only by worker k, and the control core only fills the
/// pending IV block of a lane whose `next_end` is 0 (single-producer handoff, no locks).

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.hh"
#include "crypto/crypto.hh"

namespace msecgw::sa {

inline constexpr uint16_t max_workers = 64; ///< lanes per SA; the IV reserves 6 bits for them
inline constexpr uint8_t lane_bits = 6;
static_assert(config::max_sender_id_bits + lane_bits + 32 <= 64,
              "Sender-ID and lane fields must leave the 32-bit counter (seq = ctr + 1) below them");

/// Source-authentication slot of an SA (config::source_auth_cfg::slot), or no_auth_slot.
inline constexpr uint16_t no_auth_slot = 0xffff;
inline uint16_t auth_slot_of(const config::sa_cfg& c) { return c.source_auth ? c.source_auth->slot : no_auth_slot; }

/// Outbound (SA, worker) state. IV = [Sender-ID][lane][counter]; seq = counter + 1, so the
/// counter stays below 2^32 - 1 and the sequence number never cycles (RFC 4303 §3.3.3).
struct alignas(64) out_lane {
    uint64_t ctr = 0;                       ///< next counter to use (worker)
    uint64_t end = 0;                       ///< end of the current block (worker)
    uint64_t pkts = 0;                      ///< sealed packets (worker; read by control)
    uint64_t bytes = 0;
    std::atomic<uint64_t> next_start{0};    ///< pending block, control -> worker
    std::atomic<uint64_t> next_end{0};      ///< 0 = no pending block; written last (release)
    std::atomic<uint8_t> exhausted{0};      ///< control: no counter space left for this lane
};

struct alignas(64) in_lane {
    uint64_t pkts = 0;                      ///< opened packets (worker; read by control)
    uint64_t bytes = 0;
};

struct out_sa {
    crypto::gcm_key key;
    uint32_t spi = 0;
    uint32_t uid = 0;                       ///< unique in the process, never reused
    uint64_t iv_prefix = 0;                 ///< Sender-ID bits, shifted into place
    uint8_t counter_bits = 0;               ///< bits below the lane field
    uint16_t auth_slot = no_auth_slot;      ///< source authentication (dataplane/srcauth_stage.hh)
    std::atomic<uint8_t> stopped{0};        ///< control: the SA must not send (store error…)
    std::atomic<uint8_t> expired{0};        ///< control: hard byte/second lifetime passed
    std::atomic<uint8_t> budget_spent{0};   ///< control: hard packet lifetime fully handed out
    std::string name;
    std::array<out_lane, max_workers> lanes;

    uint64_t iv(uint16_t lane, uint64_t ctr) const { return iv_prefix | uint64_t{lane} << counter_bits | ctr; }
    /// Counter space of one lane: below 2^counter_bits and below 2^32 - 1 (seq = ctr + 1).
    uint64_t counter_limit() const;
    ~out_sa();
};

struct in_sa {
    crypto::gcm_key key;
    uint32_t spi = 0;
    uint32_t uid = 0;
    uint32_t replay_window = 0;
    uint16_t auth_slot = no_auth_slot;      ///< source authentication: packets must carry a verified tag
    std::atomic<uint8_t> expired{0};        ///< control: hard lifetime passed
    config::ip_prefix dst, src;             ///< SAD selectors
    std::string name;
    std::array<in_lane, max_workers> lanes;
    ~in_sa();
};

/// Builds runtime SAs from configuration (key expansion on the control engine `e`).
/// `sender_id`/`sender_id_bits` place the Sender-ID in the IV's top bits (RFC 6054): the
/// configured `sender_id`/`sender_id_bits` of a manual SA, or the GCKS-assigned one; 0/0 = none.
/// A width above config::max_sender_id_bits or an id that does not fit is config_bad_value.
result<std::shared_ptr<out_sa>> make_out_sa(const config::sa_cfg& c, const crypto::engine& e, uint32_t uid,
                                            uint32_t sender_id = 0, uint8_t sender_id_bits = 0);
result<std::shared_ptr<in_sa>> make_in_sa(const config::sa_cfg& c, const crypto::engine& e, uint32_t uid);

crypto::aead to_crypto(config::aead_alg a);

} // namespace msecgw::sa
