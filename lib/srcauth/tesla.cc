#include "srcauth/tesla.hh"

#include <openssl/crypto.h>

#include <cstring>

namespace msecgw::srcauth {

using namespace wire;

namespace {

constexpr uint32_t recent_keys = 64; ///< keys of the latest intervals cached per sender

/// GMAC nonce: sender id || sequence number, unique per packet of a sender.
void make_iv(const uint8_t* hdr, uint8_t* iv)
{
    std::memcpy(iv, hdr + off_sender, 12);
}

/// The MAC covers header[0..td_mac) || inner, with the MAC field between them. For ipsec-mb's
/// one-call GMAC (faster than its update calls) the covered header bytes are slid up against the
/// inner packet (to header[mac_shift..tesla_data_len)) while the MAC is computed, then slid back.
constexpr size_t mac_shift = tesla_data_len - td_mac;
static_assert(mac_shift == mac_len);

void mac_slide_in(uint8_t* h) { std::memmove(h + mac_shift, h, td_mac); }
void mac_slide_out(uint8_t* h) { std::memmove(h, h + mac_shift, td_mac); }

/// SHA-256 of the signed part of a control message (ipsec-mb, direct call).
std::array<uint8_t, signed_digest_len> digest_of(crypto::engine& e, const uint8_t* p, size_t n)
{
    std::array<uint8_t, signed_digest_len> d{};
    crypto::sha256_one(e, p, uint32_t(n), d.data());
    return d;
}

bool all_zero(const uint8_t* p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; ++i) {
        acc |= p[i];
    }
    return acc == 0;
}

} // namespace

// ---------------------------------------------------------------- sender

result<tesla_sender> tesla_sender::create(crypto::engine& e, const tesla_params& p)
{
    if (p.interval_ns == 0 || p.disclosure_delay == 0 || p.chain_length < 2) {
        return error{errc::config_bad_value, "TESLA: interval, disclosure delay and chain length must be > 0"};
    }
    auto c = key_chain::generate(e, p.chain_length);
    if (!c) {
        return c.err();
    }
    return tesla_sender(p, std::move(c.value()));
}

result<tesla_sender> tesla_sender::create(crypto::engine& e, const tesla_params& p, const chain_key& last)
{
    if (p.interval_ns == 0 || p.disclosure_delay == 0 || p.chain_length < 2) {
        return error{errc::config_bad_value, "TESLA: interval, disclosure delay and chain length must be > 0"};
    }
    auto c = key_chain::from_last(e, p.chain_length, last);
    if (!c) {
        return c.err();
    }
    return tesla_sender(p, std::move(c.value()));
}

uint32_t tesla_sender::interval_at(uint64_t now_ns) const
{
    if (now_ns < _p.t0_ns) {
        return 0;
    }
    const uint64_t i = (now_ns - _p.t0_ns) / _p.interval_ns;
    return i >= UINT32_MAX ? UINT32_MAX - 1 : uint32_t(i);
}

void tesla_sender::enter_interval(crypto::engine& e, uint32_t i)
{
    chain_key mac;
    chain_f_prime(e, _chain.key(e, i), mac);
    (void)crypto::make_gmac_key(e, mac.view(), _mac_key);
    _interval = i;
}

uint32_t tesla_sender::tag_burst(crypto::engine& e, std::span<const tag_job> jobs, uint64_t now_ns)
{
    const uint32_t i = interval_at(now_ns);
    if (i == 0 || i >= _p.chain_length) {
        return 0;
    }
    if (i != _interval) {
        enter_interval(e, i);
    }
    std::array<crypto::gmac_op, max_burst> ops;
    std::array<std::array<uint8_t, crypto::gmac_iv_len>, max_burst> ivs;
    std::array<std::array<uint8_t, mac_len>, max_burst> tags;
    std::array<uint8_t, max_burst> ok;
    uint32_t tagged = 0;
    for (size_t base = 0; base < jobs.size(); base += max_burst) {
        const size_t n = std::min<size_t>(max_burst, jobs.size() - base);
        for (size_t k = 0; k < n; ++k) {
            const tag_job& j = jobs[base + k];
            uint8_t* h = j.hdr;
            put_common(h, msg_type::tesla_data, j.next, uint16_t(tesla_data_len), _p.sender_id, ++_seq);
            store_be32(h + td_interval, i);
            make_iv(h, ivs[k].data());
            mac_slide_in(h);
            ops[k] = crypto::gmac_op{&_mac_key,          ivs[k].data(), h + mac_shift, uint32_t(td_mac),
                                     h + tesla_data_len, j.inner_len,   tags[k].data()};
        }
        tagged += crypto::gmac_burst(e, std::span(ops.data(), n), std::span(ok.data(), n));
        for (size_t k = 0; k < n; ++k) {
            uint8_t* h = jobs[base + k].hdr;
            mac_slide_out(h);
            std::memcpy(h + td_mac, tags[k].data(), mac_len);
        }
    }
    return tagged;
}

size_t tesla_sender::write_bootstrap(crypto::engine& e, signer& s, uint64_t now_ns, std::span<uint8_t> out)
{
    if (out.size() < tesla_bootstrap_len) {
        return 0;
    }
    const uint32_t i = interval_at(now_ns);
    const uint32_t c = i > _p.disclosure_delay ? std::min(i - _p.disclosure_delay, _p.chain_length - 1) : 0;
    uint8_t* h = out.data();
    put_common(h, msg_type::tesla_bootstrap, next_none, uint16_t(tesla_bootstrap_len), _p.sender_id, ++_bootstrap_seq);
    store_be64(h + tb_t0, _p.t0_ns);
    store_be64(h + tb_interval_ns, _p.interval_ns);
    store_be32(h + tb_delay, _p.disclosure_delay);
    store_be32(h + tb_chain_len, _p.chain_length);
    store_be32(h + tb_commit, c);
    h[tb_sig_alg] = uint8_t(s.alg());
    h[tb_mac_alg] = mac_gmac_aes128;
    store_be16(h + tb_reserved, 0);
    std::memcpy(h + tb_key, _chain.key(e, c).data(), key_len);
    const auto d = digest_of(e, h, tb_sig);
    return s.sign_digest(d, std::span<uint8_t, sig_len>(h + tb_sig, sig_len)) ? tesla_bootstrap_len : 0;
}

size_t tesla_sender::write_disclosure(crypto::engine& e, uint64_t now_ns, std::span<uint8_t> out)
{
    const uint32_t i = std::min(interval_at(now_ns), _p.chain_length - 1 + _p.disclosure_delay);
    if (out.size() < tesla_disclosure_len || i < _p.disclosure_delay) {
        return 0;
    }
    const uint32_t j = std::min(i - _p.disclosure_delay, _p.chain_length - 1);
    uint8_t* h = out.data();
    put_common(h, msg_type::tesla_disclosure, next_none, uint16_t(tesla_disclosure_len), _p.sender_id, ++_disclosure_seq);
    store_be32(h + tk_interval, j);
    std::memset(h + tk_reserved, 0, 12);
    std::memcpy(h + tk_key, _chain.key(e, j).data(), key_len);
    return tesla_disclosure_len;
}

// ---------------------------------------------------------------- verifier

struct tesla_verifier::sender_state {
    sender_state(uint32_t sender, sig_verifier a, const tesla_receiver_policy& p)
        : id(sender), anchor(std::move(a)), policy(p), recent(recent_keys), hold(p.hold_capacity)
    {
    }
    uint32_t id;
    sig_verifier anchor;
    tesla_receiver_policy policy;
    bool bootstrapped = false;
    uint64_t bootstrap_seq = 0;
    tesla_params chain{};
    chain_key known;             ///< latest authenticated key K_known
    uint32_t known_interval = 0;
    secret_array<chain_key> recent; ///< K_i at [i % recent_keys] for i in (known - recent_keys, known], i >= recent_low
    uint32_t recent_low = 0;
    bool key_advanced = false;   ///< held packets may be decidable
    hold_ring hold;
    seq_window window;

    /// Highest interval the sender may be in at our time now (its clock at most D ahead).
    uint32_t max_sender_interval(uint64_t now_ns) const
    {
        const uint64_t t = now_ns + policy.clock_offset_bound_ns;
        if (t < chain.t0_ns) {
            return 0;
        }
        const uint64_t x = (t - chain.t0_ns) / chain.interval_ns;
        return x >= UINT32_MAX ? UINT32_MAX : uint32_t(x);
    }
};

/// Per-verifier work areas (one verifier per lcore), allocated once.
struct tesla_verifier::scratch {
    static constexpr uint32_t key_slots = 4;
    secret_array<chain_key> walk{recent_keys};
    std::array<crypto::gcm_key, key_slots> mac_keys{};
    std::array<uint32_t, key_slots> mac_key_interval{};
    std::array<crypto::gmac_op, max_burst> ops{};
    std::array<held_packet*, max_burst> held{};
    std::array<std::array<uint8_t, crypto::gmac_iv_len>, max_burst> ivs{};
    std::array<std::array<uint8_t, mac_len>, max_burst> tags{};
    std::array<std::array<uint8_t, mac_len>, max_burst> macs{}; ///< the packets' MAC fields
    std::array<uint8_t, max_burst> ok{};
    ~scratch()
    {
        for (auto& k : mac_keys) {
            crypto::clear_gcm_key(k);
        }
    }
};

tesla_verifier::tesla_verifier() : _scratch(std::make_unique<scratch>()) {}
tesla_verifier::tesla_verifier(tesla_verifier&&) noexcept = default;
tesla_verifier& tesla_verifier::operator=(tesla_verifier&&) noexcept = default;
tesla_verifier::~tesla_verifier() = default;

void tesla_verifier::add_sender(uint32_t sender_id, sig_verifier anchor, const tesla_receiver_policy& policy)
{
    _senders.add(sender_id, sender_state(sender_id, std::move(anchor), policy));
    _queue.reserve_more(policy.hold_capacity);
}

void tesla_verifier::finish(sender_state& s, held_packet& h, verdict v, reason why)
{
    settle_held(s.hold, s.window, h, v, why, _stats, _queue);
}

bool tesla_verifier::learn_key(crypto::engine& e, sender_state& s, uint32_t j, const uint8_t* key, uint64_t now_ns)
{
    if (j <= s.known_interval) {
        return true; // already known: nothing to learn (a stale copy is harmless)
    }
    const uint32_t x = s.max_sender_interval(now_ns);
    if (j >= s.chain.chain_length || uint64_t(j) + s.chain.disclosure_delay > x ||
        j - s.known_interval > s.policy.max_chain_walk) {
        return false; // not disclosed yet by a sender within our clock bound, or too far to walk
    }
    // Walk K_j down to K_known into the scratch ring; adopt it only if it ends on the known key.
    chain_key k;
    std::memcpy(k.data(), key, key_len);
    for (uint32_t i = j; i > s.known_interval; --i) {
        if (j - i < recent_keys) {
            _scratch->walk[i % recent_keys] = k;
        }
        chain_f(e, k, k);
    }
    if (CRYPTO_memcmp(k.data(), s.known.data(), key_len) != 0) {
        return false;
    }
    for (uint32_t i = j; i > s.known_interval && j - i < recent_keys; --i) {
        s.recent[i % recent_keys] = _scratch->walk[i % recent_keys];
    }
    std::memcpy(s.known.data(), key, key_len);
    s.known_interval = j;
    s.key_advanced = true;
    return true;
}

decision tesla_verifier::on_bootstrap(crypto::engine& e, sender_state& s, const packet_view& p)
{
    const uint8_t* h = p.data;
    wire::common c{};
    (void)parse_common(h, p.len, c);
    if (s.bootstrapped && c.seq <= s.bootstrap_seq) {
        return {verdict::drop, reason::stale_control};
    }
    tesla_params t;
    t.sender_id = s.id;
    t.t0_ns = load_be64(h + tb_t0);
    t.interval_ns = load_be64(h + tb_interval_ns);
    t.disclosure_delay = load_be32(h + tb_delay);
    t.chain_length = load_be32(h + tb_chain_len);
    const uint32_t commit = load_be32(h + tb_commit);
    if (t.interval_ns == 0 || t.disclosure_delay == 0 || commit >= t.chain_length || h[tb_mac_alg] != mac_gmac_aes128 ||
        load_be16(h + tb_reserved) != 0 || h[tb_sig_alg] != uint8_t(s.anchor.alg())) {
        return {verdict::drop, reason::malformed};
    }
    const auto d = digest_of(e, h, tb_sig);
    if (!s.anchor.verify_digest(d, std::span<const uint8_t, sig_len>(h + tb_sig, sig_len))) {
        return {verdict::drop, reason::bad_signature};
    }
    s.bootstrap_seq = c.seq;
    const bool same_chain = s.bootstrapped && t.t0_ns == s.chain.t0_ns && t.interval_ns == s.chain.interval_ns &&
                            t.disclosure_delay == s.chain.disclosure_delay && t.chain_length == s.chain.chain_length;
    if (same_chain && commit <= s.known_interval) {
        return {verdict::consumed, reason::none}; // a refresh of what we know
    }
    if (!same_chain) {
        s.hold.for_each_live([&](held_packet& hp) { finish(s, hp, verdict::drop, reason::chain_replaced); });
        s.window = seq_window{};
        s.chain = t;
    }
    // The signature authenticates K_commit directly.
    std::memcpy(s.known.data(), h + tb_key, key_len);
    s.known_interval = commit;
    s.recent[commit % recent_keys] = s.known;
    s.recent_low = commit;
    s.bootstrapped = true;
    s.key_advanced = true;
    ++_stats.control_accepted;
    return {verdict::consumed, reason::none};
}

decision tesla_verifier::on_disclosure(crypto::engine& e, sender_state& s, const packet_view& p, uint64_t now_ns)
{
    const uint8_t* h = p.data;
    if (!s.bootstrapped) {
        return {verdict::drop, reason::not_bootstrapped};
    }
    if (!all_zero(h + tk_reserved, 12)) {
        return {verdict::drop, reason::malformed};
    }
    const uint32_t j = load_be32(h + tk_interval);
    if (j == s.known_interval) { // senders repeat each disclosure within its interval
        if (CRYPTO_memcmp(h + tk_key, s.known.data(), key_len) != 0) {
            return {verdict::drop, reason::bad_disclosure};
        }
        ++_stats.control_accepted;
        return {verdict::consumed, reason::none};
    }
    if (j <= s.known_interval) {
        return {verdict::drop, reason::stale_control};
    }
    if (!learn_key(e, s, j, h + tk_key, now_ns)) {
        return {verdict::drop, reason::bad_disclosure};
    }
    ++_stats.control_accepted;
    return {verdict::consumed, reason::none};
}

decision tesla_verifier::on_data(sender_state& s, const packet_view& p, uint64_t now_ns)
{
    const uint8_t* h = p.data;
    if (h[off_next] != next_ipv4 && h[off_next] != next_ipv6) {
        return {verdict::drop, reason::malformed};
    }
    if (!s.bootstrapped) {
        return {verdict::drop, reason::not_bootstrapped};
    }
    const uint32_t i = load_be32(h + td_interval);
    const uint32_t x = s.max_sender_interval(now_ns);
    if (i == 0 || i >= s.chain.chain_length || i > x) {
        return {verdict::drop, reason::bad_interval};
    }
    // Safety (RFC 4082 section 3.5): K_i is disclosed from interval i + d on.
    if (uint64_t(x) >= uint64_t(i) + s.chain.disclosure_delay || i <= s.known_interval) {
        return {verdict::drop, reason::unsafe};
    }
    held_packet* hp = s.hold.push();
    if (hp == nullptr) {
        return {verdict::drop, reason::overflow};
    }
    hp->pkt = p;
    hp->seq = load_be64(h + off_seq);
    hp->arrival_ns = now_ns;
    hp->interval = i;
    ++_stats.held;
    return {verdict::hold, reason::none};
}

void tesla_verifier::settle_known(crypto::engine& e, sender_state& s)
{
    scratch& sc = *_scratch;
    uint32_t slots_used = 0;
    uint32_t n = 0;
    auto flush = [&] {
        crypto::gmac_burst(e, std::span(sc.ops.data(), n), std::span(sc.ok.data(), n));
        for (uint32_t k = 0; k < n; ++k) {
            mac_slide_out(sc.held[k]->pkt.data);
            const bool good = sc.ok[k] && CRYPTO_memcmp(sc.tags[k].data(), sc.macs[k].data(), mac_len) == 0;
            finish(s, *sc.held[k], good ? verdict::release : verdict::drop, good ? reason::none : reason::forged);
        }
        n = 0;
    };
    auto mac_key_for = [&](uint32_t interval) -> const crypto::gcm_key* {
        for (uint32_t k = 0; k < slots_used; ++k) {
            if (sc.mac_key_interval[k] == interval) {
                return &sc.mac_keys[k];
            }
        }
        if (slots_used == scratch::key_slots) {
            flush();
            slots_used = 0;
        }
        chain_key k;
        if (s.known_interval - interval < recent_keys && interval >= s.recent_low) {
            k = s.recent[interval % recent_keys];
        } else {
            k = s.known; // older than the cache: walk down from the known key
            for (uint32_t i = s.known_interval; i > interval; --i) {
                chain_f(e, k, k);
            }
        }
        chain_f_prime(e, k, k);
        (void)crypto::make_gmac_key(e, k.view(), sc.mac_keys[slots_used]);
        sc.mac_key_interval[slots_used] = interval;
        return &sc.mac_keys[slots_used++];
    };
    s.hold.for_each_live([&](held_packet& h) {
        if (h.interval > s.known_interval) {
            return;
        }
        if (s.known_interval - h.interval > s.policy.max_chain_walk) {
            finish(s, h, verdict::drop, reason::timeout);
            return;
        }
        const crypto::gcm_key* key = mac_key_for(h.interval);
        if (n == max_burst) {
            flush();
        }
        make_iv(h.pkt.data, sc.ivs[n].data());
        const uint32_t inner = h.pkt.len - uint32_t(tesla_data_len);
        uint8_t* mac = sc.macs[n].data();
        std::memcpy(mac, h.pkt.data + td_mac, mac_len); // the slide overwrites the MAC field
        mac_slide_in(h.pkt.data);
        sc.ops[n] = crypto::gmac_op{key,          sc.ivs[n].data(), h.pkt.data + mac_shift, uint32_t(td_mac),
                                    h.pkt.data + tesla_data_len, inner, sc.tags[n].data()};
        sc.held[n++] = &h;
    });
    flush();
    s.key_advanced = false;
}

void tesla_verifier::verify_burst(crypto::engine& e, std::span<const packet_view> in, uint64_t now_ns, std::span<decision> out)
{
    judge_each(in, out, _stats, [&](const wire::common& c, const packet_view& p, size_t) -> decision {
        sender_state* s = _senders.find(c.sender);
        if (s == nullptr) {
            return {verdict::drop, reason::unknown_sender};
        }
        switch (c.type) {
        case msg_type::tesla_data: return on_data(*s, p, now_ns);
        case msg_type::tesla_bootstrap: return on_bootstrap(e, *s, p);
        case msg_type::tesla_disclosure: return on_disclosure(e, *s, p, now_ns);
        default: return {verdict::drop, reason::wrong_mode};
        }
    });
    _senders.for_each([&](sender_state& s) {
        if (s.key_advanced) {
            settle_known(e, s);
        }
    });
}

void tesla_verifier::poll(crypto::engine& e, uint64_t now_ns)
{
    _senders.for_each([&](sender_state& s) {
        if (s.key_advanced) {
            settle_known(e, s);
        }
        if (s.policy.hold_timeout_ns == 0) {
            return;
        }
        s.hold.for_each_live([&](held_packet& h) {
            if (now_ns - h.arrival_ns >= s.policy.hold_timeout_ns) {
                finish(s, h, verdict::drop, reason::timeout);
            }
        });
    });
}

} // namespace msecgw::srcauth
