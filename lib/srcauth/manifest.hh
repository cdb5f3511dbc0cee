#pragma once
/// Signed manifests (AMBI-like): the sender hashes every packet (SHA-256 of header || inner packet,
/// truncated to 16 bytes, batched on ipsec-mb's multi-buffer jobs) and, every N packets or T ns,
/// emits a manifest of those digests signed with Ed25519 or ECDSA P-256. The verifier holds each
/// sender's packets until a verified manifest covers them; replayed manifests are refused.
///
/// Signing a manifest may happen on the tagging lcore (write_manifest) or be split off: the worker
/// writes the unsigned manifest and another lcore signs it in place (sign_manifest).

#include "common/result.hh"
#include "crypto/auth.hh"
#include "srcauth/hold.hh"
#include "srcauth/signature.hh"
#include "srcauth/tesla.hh"

#include <vector>

namespace msecgw::srcauth {

struct manifest_sender_params {
    uint32_t sender_id = 0;
    uint32_t max_packets = 64;   ///< N: digests per manifest (<= wire::manifest_max_digests)
    uint64_t max_age_ns = 0;     ///< T: a manifest is due when its oldest digest is this old (0: never)
};

class manifest_sender {
public:
    static constexpr size_t header_len = wire::manifest_data_len;

    static result<manifest_sender> create(const manifest_sender_params& p);

    /// Worker: writes headers and records digests. Tags as many jobs as fit next to the digests not
    /// yet in a manifest (room for 2N); the untagged rest must wait until a manifest is written.
    uint32_t tag_burst(crypto::engine& e, std::span<const tag_job> jobs, uint64_t now_ns);
    /// A manifest should be written now (N digests pending, or the oldest is T old).
    bool manifest_due(uint64_t now_ns) const;
    uint32_t pending() const { return _pending; }
    /// Largest manifest this sender writes.
    size_t max_manifest_len() const { return wire::manifest_len(_p.max_packets); }

    /// Writes and signs a manifest of up to N pending digests. Returns its length, 0 if nothing is
    /// pending, out is short, or signing failed (the digests stay pending then).
    size_t write_manifest(crypto::engine& e, signer& s, std::span<uint8_t> out);
    /// Same without the signature (its 64 bytes zero): for signing on another lcore.
    size_t write_unsigned_manifest(std::span<uint8_t> out, wire::sig_alg alg);

private:
    explicit manifest_sender(const manifest_sender_params& p);
    manifest_sender_params _p;
    std::vector<uint8_t> _digests; ///< 2N x 16 bytes, allocated at creation
    uint32_t _pending = 0;
    uint64_t _first_seq = 1;       ///< sequence number of the first pending digest
    uint64_t _oldest_ns = 0;
    uint64_t _seq = 0;
    uint64_t _manifest_seq = 0;
};

/// Signs a manifest written by write_unsigned_manifest, in place (any lcore). False on failure.
bool sign_manifest(crypto::engine& e, signer& s, std::span<uint8_t> manifest);

struct manifest_receiver_policy {
    uint32_t hold_capacity = 1024;   ///< packets held per sender
    uint64_t hold_timeout_ns = 0;    ///< a held packet waits at most this long for its manifest
    bool best_effort = false;        ///< at timeout release (counted released_unverified) instead of drop
    uint32_t max_digests = 256;      ///< largest manifest accepted
    uint32_t kept_manifests = 4;     ///< verified manifests kept for packets arriving after them
};

class manifest_verifier {
public:
    manifest_verifier();
    manifest_verifier(manifest_verifier&&) noexcept;
    manifest_verifier& operator=(manifest_verifier&&) noexcept;
    ~manifest_verifier();

    void add_sender(uint32_t sender_id, sig_verifier anchor, const manifest_receiver_policy& policy);
    /// Worker: manifest_data packets are released (covered by a kept manifest), held or dropped;
    /// manifests are consumed or dropped. Held packets decided now are queued for drain().
    void verify_burst(crypto::engine& e, std::span<const packet_view> in, uint64_t now_ns, std::span<decision> out);
    /// Worker: hold timeouts.
    void poll(uint64_t now_ns);
    uint32_t drain(std::span<settled> out) { return _queue.drain(out); }
    const counters& stats() const { return _stats; }

    struct sender_state;

private:
    decision on_data(sender_state& s, const packet_view& p, const uint8_t* digest, uint64_t now_ns);
    decision on_manifest(crypto::engine& e, sender_state& s, const packet_view& p);
    void finish(sender_state& s, held_packet& h, verdict v, reason why);

    sender_table<sender_state> _senders;
    settle_queue _queue;
    counters _stats;
    std::array<std::array<uint8_t, crypto::sha256_len>, max_burst> _digests{}; ///< one per packet of a chunk
    std::array<crypto::sha256_op, max_burst> _ops{};
};

} // namespace msecgw::srcauth
