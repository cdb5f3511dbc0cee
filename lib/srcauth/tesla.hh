#pragma once
/// TESLA (RFC 4082) source authentication: a sender object per (sender, lcore) that tags packets
/// with the MAC of the current interval's key and discloses the key of d intervals ago, and a
/// verifier per lcore that holds each sender's packets until their key is disclosed.
///
/// Time is passed in (ns of the gateway's synchronised clock); nothing reads a clock. The safety
/// condition: a packet of interval i that arrives at local time t is kept only if the sender, whose
/// clock may be up to `clock_offset_bound_ns` ahead of ours, cannot have entered interval i + d
/// (when K_i is disclosed) yet; otherwise it is dropped as `unsafe`.

#include "common/result.hh"
#include "crypto/auth.hh"
#include "srcauth/hold.hh"
#include "srcauth/outcome.hh"
#include "srcauth/signature.hh"
#include "srcauth/tesla_chain.hh"

#include <cstdint>
#include <optional>
#include <span>

namespace msecgw::srcauth {

/// Where to write one packet's header: `hdr` has room for the mode's header and the inner packet
/// (inner_len bytes, IP protocol `next`) follows it immediately. signed_data also needs 64 bytes
/// of room after the inner packet for its trailer.
struct tag_job {
    uint8_t* hdr;
    uint32_t inner_len;
    uint8_t next;
};

/// How often a sender repeats the disclosure of one key within an interval (the gateway's
/// worker: at the interval's start and every interval / this after).
inline constexpr uint32_t disclosures_per_interval = 4;

struct tesla_params {
    uint32_t sender_id = 0;
    uint64_t t0_ns = 0;            ///< start of interval 0 (sender clock); interval 0 is never used for data
    uint64_t interval_ns = 0;
    uint32_t disclosure_delay = 2; ///< d >= 1 intervals
    uint32_t chain_length = 0;     ///< N; intervals 1 .. N-1 carry data
};

class tesla_sender {
public:
    static constexpr size_t header_len = wire::tesla_data_len;

    /// Control core: generates the chain (N F evaluations) and its key schedule.
    static result<tesla_sender> create(crypto::engine& e, const tesla_params& p);
    /// Tests: a chain from a fixed last key.
    static result<tesla_sender> create(crypto::engine& e, const tesla_params& p, const chain_key& last);

    const tesla_params& params() const { return _p; }
    /// Interval of sender time now_ns (0 before t0).
    uint32_t interval_at(uint64_t now_ns) const;

    /// Worker: writes every job's header (sequence number, interval, GMAC) for time
    /// now_ns. Returns the number tagged: all of them, or 0 if now is in interval 0 or past the
    /// chain (then the packets must not be sent: a new chain and bootstrap are needed).
    uint32_t tag_burst(crypto::engine& e, std::span<const tag_job> jobs, uint64_t now_ns);

    /// Signed bootstrap committing to K_c (c = the latest interval whose key is already disclosed at
    /// now_ns, or 0). Returns its length (128) or 0 if out is short or signing failed.
    size_t write_bootstrap(crypto::engine& e, signer& s, uint64_t now_ns, std::span<uint8_t> out);
    /// Disclosure of K_{i-d} for interval i of now_ns: the only way keys reach receivers (data
    /// packets carry none), so send it in every interval, busy or idle (the gateway: several
    /// times, disclosures_per_interval); a lost one is made up by any later one (the chain).
    /// Returns its length (48) or 0 if no key is disclosable yet.
    size_t write_disclosure(crypto::engine& e, uint64_t now_ns, std::span<uint8_t> out);

private:
    explicit tesla_sender(const tesla_params& p, key_chain c) : _p(p), _chain(std::move(c)) {}
    /// Loads K'_i (expanded for GMAC) and K_{i-d} for interval i.
    void enter_interval(crypto::engine& e, uint32_t i);

    tesla_params _p;
    key_chain _chain;
    uint64_t _seq = 0;
    uint64_t _bootstrap_seq = 0;
    uint64_t _disclosure_seq = 0;
    uint32_t _interval = 0; ///< interval whose keys are loaded (0: none)
    crypto::gcm_key _mac_key{};
};

struct tesla_receiver_policy {
    uint64_t clock_offset_bound_ns = 0; ///< D_t: how far the sender's clock may be ahead of ours
    uint32_t hold_capacity = 1024;      ///< packets held per sender
    uint64_t hold_timeout_ns = 0;       ///< 0: no timeout (keys of an idle sender arrive by disclosure)
    uint32_t max_chain_walk = 4096;     ///< F evaluations allowed to authenticate one disclosed key
};

class tesla_verifier {
public:
    tesla_verifier();
    tesla_verifier(tesla_verifier&&) noexcept;
    tesla_verifier& operator=(tesla_verifier&&) noexcept;
    ~tesla_verifier();

    /// Control core, before the worker runs: a sender and its trust anchor (bootstrap signatures).
    void add_sender(uint32_t sender_id, sig_verifier anchor, const tesla_receiver_policy& policy);

    /// Worker: one decision per packet (tesla_data: hold or drop; control messages: consumed or
    /// drop). Held packets whose key arrived in this burst are decided and queued for drain().
    void verify_burst(crypto::engine& e, std::span<const packet_view> in, uint64_t now_ns, std::span<decision> out);
    /// Worker, when idle: applies hold timeouts.
    void poll(crypto::engine& e, uint64_t now_ns);
    /// Worker: decisions on held packets, oldest first.
    uint32_t drain(std::span<settled> out) { return _queue.drain(out); }

    const counters& stats() const { return _stats; }

    struct sender_state;
    struct scratch;

private:
    decision on_data(sender_state& s, const packet_view& p, uint64_t now_ns);
    decision on_bootstrap(crypto::engine& e, sender_state& s, const packet_view& p);
    decision on_disclosure(crypto::engine& e, sender_state& s, const packet_view& p, uint64_t now_ns);
    bool learn_key(crypto::engine& e, sender_state& s, uint32_t j, const uint8_t* key, uint64_t now_ns);
    void settle_known(crypto::engine& e, sender_state& s);
    void finish(sender_state& s, held_packet& h, verdict v, reason why);

    sender_table<sender_state> _senders;
    settle_queue _queue;
    counters _stats;
    std::unique_ptr<scratch> _scratch;
};

} // namespace msecgw::srcauth
