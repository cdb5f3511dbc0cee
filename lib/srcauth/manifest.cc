#include "srcauth/manifest.hh"

#include <openssl/crypto.h>

#include <cstring>

namespace msecgw::srcauth {

using namespace wire;

namespace {

/// Digests of the manifest_data packets of one chunk (others get a null op and no digest).
template <class Digests, class Ops>
void hash_chunk(crypto::engine& e, std::span<const packet_view> chunk, Digests& digests, Ops& ops)
{
    uint32_t n = 0;
    for (size_t k = 0; k < chunk.size(); ++k) {
        const packet_view& p = chunk[k];
        if (p.data != nullptr && p.len >= manifest_data_len && (p.data[off_type] & 0x0f) == uint8_t(msg_type::manifest_data)) {
            ops[n++] = crypto::sha256_op{p.data, p.len, digests[k].data()};
        }
    }
    crypto::sha256_burst(e, std::span(ops.data(), n));
}

std::array<uint8_t, signed_digest_len> manifest_digest(crypto::engine& e, const uint8_t* m, size_t count)
{
    std::array<uint8_t, signed_digest_len> d{};
    crypto::sha256_one(e, m, uint32_t(mf_digests + count * digest_len), d.data());
    return d;
}

} // namespace

// ---------------------------------------------------------------- sender

manifest_sender::manifest_sender(const manifest_sender_params& p) : _p(p), _digests(size_t(2) * p.max_packets * digest_len) {}

result<manifest_sender> manifest_sender::create(const manifest_sender_params& p)
{
    if (p.max_packets == 0 || p.max_packets > manifest_max_digests) {
        return error{errc::config_bad_value, "manifest: packets per manifest must be 1 .. " +
                                                 std::to_string(manifest_max_digests)};
    }
    return manifest_sender(p);
}

uint32_t manifest_sender::tag_burst(crypto::engine& e, std::span<const tag_job> jobs, uint64_t now_ns)
{
    const uint32_t room = 2 * _p.max_packets - _pending;
    const size_t n = std::min<size_t>(jobs.size(), room);
    std::array<crypto::sha256_op, max_burst> ops;
    std::array<std::array<uint8_t, crypto::sha256_len>, max_burst> full;
    for (size_t base = 0; base < n; base += max_burst) {
        const size_t m = std::min<size_t>(max_burst, n - base);
        for (size_t k = 0; k < m; ++k) {
            const tag_job& j = jobs[base + k];
            put_common(j.hdr, msg_type::manifest_data, j.next, uint16_t(manifest_data_len), _p.sender_id, ++_seq);
            ops[k] = crypto::sha256_op{j.hdr, uint32_t(manifest_data_len + j.inner_len), full[k].data()};
        }
        crypto::sha256_burst(e, std::span(ops.data(), m));
        if (_pending == 0) {
            _oldest_ns = now_ns;
        }
        for (size_t k = 0; k < m; ++k) {
            std::memcpy(_digests.data() + size_t(_pending++) * digest_len, full[k].data(), digest_len);
        }
    }
    return uint32_t(n);
}

bool manifest_sender::manifest_due(uint64_t now_ns) const
{
    return _pending >= _p.max_packets || (_pending > 0 && _p.max_age_ns != 0 && now_ns - _oldest_ns >= _p.max_age_ns);
}

size_t manifest_sender::write_unsigned_manifest(std::span<uint8_t> out, sig_alg alg)
{
    const uint32_t count = std::min(_pending, _p.max_packets);
    const size_t len = manifest_len(count);
    if (count == 0 || out.size() < len) {
        return 0;
    }
    uint8_t* h = out.data();
    put_common(h, msg_type::manifest, next_none, uint16_t(len), _p.sender_id, ++_manifest_seq);
    store_be64(h + mf_first, _first_seq);
    store_be16(h + mf_count, uint16_t(count));
    h[mf_sig_alg] = uint8_t(alg);
    h[mf_digest_len] = uint8_t(digest_len);
    store_be32(h + mf_reserved, 0);
    std::memcpy(h + mf_digests, _digests.data(), count * digest_len);
    std::memset(h + mf_digests + count * digest_len, 0, sig_len);
    // The rest moves to the front: at most N digests, once per manifest.
    std::memmove(_digests.data(), _digests.data() + count * digest_len, size_t(_pending - count) * digest_len);
    _pending -= count;
    _first_seq += count;
    return len;
}

bool sign_manifest(crypto::engine& e, signer& s, std::span<uint8_t> m)
{
    wire::common c{};
    if (!parse_common(m.data(), m.size(), c) || c.type != msg_type::manifest || m[mf_sig_alg] != uint8_t(s.alg())) {
        return false;
    }
    const size_t count = load_be16(m.data() + mf_count);
    const auto d = manifest_digest(e, m.data(), count);
    return s.sign_digest(d, std::span<uint8_t, sig_len>(m.data() + mf_digests + count * digest_len, sig_len));
}

size_t manifest_sender::write_manifest(crypto::engine& e, signer& s, std::span<uint8_t> out)
{
    const auto saved_pending = _pending;
    const auto saved_first = _first_seq;
    const size_t len = write_unsigned_manifest(out, s.alg());
    if (len == 0) {
        return 0;
    }
    if (!sign_manifest(e, s, out.first(len))) {
        // Put the digests back: they are still at the front of `out`.
        std::memmove(_digests.data() + (saved_pending - _pending) * digest_len, _digests.data(), size_t(_pending) * digest_len);
        std::memcpy(_digests.data(), out.data() + mf_digests, (saved_pending - _pending) * digest_len);
        _pending = saved_pending;
        _first_seq = saved_first;
        --_manifest_seq;
        return 0;
    }
    return len;
}

// ---------------------------------------------------------------- verifier

/// A verified manifest kept for packets that arrive after it.
struct kept_manifest {
    uint64_t first = 0;
    uint32_t count = 0;
    std::vector<uint8_t> digests; ///< max_digests x 16, allocated when the sender is added
};

struct manifest_verifier::sender_state {
    sender_state(uint32_t sender, sig_verifier a, const manifest_receiver_policy& p)
        : id(sender), anchor(std::move(a)), policy(p), kept(p.kept_manifests), hold(p.hold_capacity)
    {
        for (auto& k : kept) {
            k.digests.resize(size_t(p.max_digests) * digest_len);
        }
    }
    uint32_t id;
    sig_verifier anchor;
    manifest_receiver_policy policy;
    bool any_manifest = false;
    uint64_t manifest_seq = 0;   ///< last accepted
    uint64_t covered_end = 0;    ///< one past the highest sequence number any accepted manifest covered
    std::vector<kept_manifest> kept;
    uint32_t next_kept = 0;
    hold_ring hold;
    seq_window window;

    /// The kept manifest covering seq, or null.
    const kept_manifest* covering(uint64_t seq) const
    {
        for (const auto& k : kept) {
            if (k.count != 0 && seq >= k.first && seq - k.first < k.count) {
                return &k;
            }
        }
        return nullptr;
    }
};

manifest_verifier::manifest_verifier() = default;
manifest_verifier::manifest_verifier(manifest_verifier&&) noexcept = default;
manifest_verifier& manifest_verifier::operator=(manifest_verifier&&) noexcept = default;
manifest_verifier::~manifest_verifier() = default;

void manifest_verifier::add_sender(uint32_t sender_id, sig_verifier anchor, const manifest_receiver_policy& policy)
{
    _senders.add(sender_id, sender_state(sender_id, std::move(anchor), policy));
    _queue.reserve_more(policy.hold_capacity);
}

void manifest_verifier::finish(sender_state& s, held_packet& h, verdict v, reason why)
{
    settle_held(s.hold, s.window, h, v, why, _stats, _queue);
}

/// Compares a packet digest with its manifest entry (constant time).
static bool matches(const kept_manifest& m, uint64_t seq, const uint8_t* digest)
{
    return CRYPTO_memcmp(m.digests.data() + (seq - m.first) * digest_len, digest, digest_len) == 0;
}

decision manifest_verifier::on_data(sender_state& s, const packet_view& p, const uint8_t* digest, uint64_t now_ns)
{
    if (p.data[off_next] != next_ipv4 && p.data[off_next] != next_ipv6) {
        return {verdict::drop, reason::malformed};
    }
    const uint64_t seq = load_be64(p.data + off_seq);
    if (const kept_manifest* m = s.covering(seq)) {
        if (!matches(*m, seq, digest)) {
            return {verdict::drop, reason::forged};
        }
        return s.window.accept(seq) ? decision{verdict::release, reason::none} : decision{verdict::drop, reason::replayed_packet};
    }
    if (seq < s.covered_end) {
        // Its manifest came and went: it can no longer be verified (late or forged).
        if (s.policy.best_effort && s.window.accept(seq)) {
            return {verdict::release, reason::timeout};
        }
        return {verdict::drop, reason::timeout};
    }
    held_packet* h = s.hold.push();
    if (h == nullptr) {
        return {verdict::drop, reason::overflow};
    }
    h->pkt = p;
    h->seq = seq;
    h->arrival_ns = now_ns;
    std::memcpy(h->digest.data(), digest, digest_len);
    ++_stats.held;
    return {verdict::hold, reason::none};
}

decision manifest_verifier::on_manifest(crypto::engine& e, sender_state& s, const packet_view& p)
{
    const uint8_t* m = p.data;
    wire::common c{};
    (void)parse_common(m, p.len, c);
    if (s.any_manifest && c.seq <= s.manifest_seq) {
        return {verdict::drop, reason::replayed_manifest};
    }
    const uint32_t count = load_be16(m + mf_count);
    if (count == 0 || count > s.policy.max_digests || m[mf_digest_len] != digest_len || load_be32(m + mf_reserved) != 0 ||
        m[mf_sig_alg] != uint8_t(s.anchor.alg())) {
        return {verdict::drop, reason::malformed};
    }
    const auto d = manifest_digest(e, m, count);
    if (!s.anchor.verify_digest(d, std::span<const uint8_t, sig_len>(m + mf_digests + count * digest_len, sig_len))) {
        return {verdict::drop, reason::bad_signature};
    }
    s.any_manifest = true;
    s.manifest_seq = c.seq;
    kept_manifest& k = s.kept[s.next_kept];
    s.next_kept = (s.next_kept + 1) % uint32_t(s.kept.size());
    k.first = load_be64(m + mf_first);
    k.count = count;
    std::memcpy(k.digests.data(), m + mf_digests, count * digest_len);
    s.covered_end = std::max(s.covered_end, k.first + count);
    ++_stats.control_accepted;
    s.hold.for_each_live([&](held_packet& h) {
        if (h.seq >= k.first && h.seq - k.first < count) {
            const bool good = matches(k, h.seq, h.digest.data());
            finish(s, h, good ? verdict::release : verdict::drop, good ? reason::none : reason::forged);
        }
    });
    return {verdict::consumed, reason::none};
}

void manifest_verifier::verify_burst(crypto::engine& e, std::span<const packet_view> in, uint64_t now_ns, std::span<decision> out)
{
    for (size_t base = 0; base < in.size() && base < out.size(); base += max_burst) {
        const size_t n = std::min<size_t>({max_burst, in.size() - base, out.size() - base});
        const auto chunk = in.subspan(base, n);
        hash_chunk(e, chunk, _digests, _ops);
        judge_each(chunk, out.subspan(base, n), _stats, [&](const wire::common& c, const packet_view& p, size_t k) -> decision {
            sender_state* s = _senders.find(c.sender);
            if (s == nullptr) {
                return {verdict::drop, reason::unknown_sender};
            }
            switch (c.type) {
            case msg_type::manifest_data: return on_data(*s, p, _digests[k].data(), now_ns);
            case msg_type::manifest: return on_manifest(e, *s, p);
            default: return {verdict::drop, reason::wrong_mode};
            }
        });
    }
}

void manifest_verifier::poll(uint64_t now_ns)
{
    _senders.for_each([&](sender_state& s) {
        if (s.policy.hold_timeout_ns == 0) {
            return;
        }
        s.hold.for_each_live([&](held_packet& h) {
            if (now_ns - h.arrival_ns >= s.policy.hold_timeout_ns) {
                finish(s, h, s.policy.best_effort ? verdict::release : verdict::drop, reason::timeout);
            }
        });
    });
}

} // namespace msecgw::srcauth
