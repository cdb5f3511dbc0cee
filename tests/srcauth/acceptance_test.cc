// Issue [D] acceptance 1-3 at library level, on a synthetic clock (no timings):
//  1. a group member forges >= 10^4 packets claiming the real sender: 0 accepted in each mode, all
//     counted, every genuine packet passes (TESLA: within d + 1 intervals);
//  2. TESLA: a packet arriving when its key may be disclosed is dropped as unsafe; lost disclosures
//     are recovered from later ones through the chain without losing a genuine packet;
//  3. manifest: a lost manifest makes packets wait at most the timeout, then dropped and counted
//     (or released in best effort); a replayed manifest is refused.

#include "test_util.hh"

#include <cstring>
#include <deque>
#include <map>

#include "srcauth/manifest.hh"
#include "srcauth/signed.hh"
#include "srcauth/tesla.hh"

using namespace msecgw;
using namespace msecgw::srcauth;
using namespace msecgw::srcauth::test;

namespace {

constexpr uint32_t sender_id = 0x0a000001;
constexpr uint64_t ms = 1'000'000;

/// A packet with its fate as the test knows it.
struct tracked {
    test_packet p;
    bool genuine;
    uint64_t sent_ns = 0;
    int released = 0;
    int dropped = 0;
    reason why = reason::none;
};

/// Owns packets (stable addresses) and applies decisions to them.
struct ledger {
    std::deque<tracked> all;
    tracked& add(test_packet p, bool genuine, uint64_t now)
    {
        all.push_back(tracked{std::move(p), genuine, now});
        return all.back();
    }
    static void apply(tracked& t, verdict v, reason why)
    {
        if (v == verdict::release) {
            ++t.released;
        } else if (v == verdict::drop) {
            ++t.dropped;
            t.why = why;
        }
    }
    /// Verdicts of one burst, then everything drained.
    template <class V>
    void judge(V& verifier, std::vector<tracked*>& batch, std::span<const decision> d)
    {
        for (size_t k = 0; k < batch.size(); ++k) {
            apply(*batch[k], d[k].v, d[k].why);
        }
        drain(verifier);
    }
    template <class V>
    uint64_t drain(V& verifier, uint64_t now = 0, uint64_t* max_delay = nullptr)
    {
        std::array<settled, 64> out;
        uint64_t n = 0;
        while (uint32_t got = verifier.drain(out)) {
            for (uint32_t k = 0; k < got; ++k) {
                auto* t = static_cast<tracked*>(out[k].handle);
                apply(*t, out[k].v, out[k].why);
                if (max_delay != nullptr && out[k].v == verdict::release) {
                    *max_delay = std::max(*max_delay, now - t->sent_ns);
                }
            }
            n += got;
        }
        return n;
    }
    /// One burst through a holding verifier (TESLA or manifest), decisions applied.
    template <class V>
    void deliver(crypto::engine& e, V& verifier, std::vector<tracked*>& batch, uint64_t now);
    size_t count(bool genuine, bool released) const
    {
        size_t n = 0;
        for (const auto& t : all) {
            n += t.genuine == genuine && (released ? t.released > 0 : t.dropped > 0);
        }
        return n;
    }
    size_t total(bool genuine) const
    {
        size_t n = 0;
        for (const auto& t : all) {
            n += t.genuine == genuine;
        }
        return n;
    }
};

packet_view view_of(tracked& t, size_t trailer = 0)
{
    packet_view v = t.p.view(trailer);
    v.handle = &t;
    return v;
}

template <class V>
void ledger::deliver(crypto::engine& e, V& verifier, std::vector<tracked*>& batch, uint64_t now)
{
    std::vector<packet_view> v;
    for (tracked* t : batch) {
        v.push_back(view_of(*t));
    }
    std::vector<decision> d(v.size());
    verifier.verify_burst(e, v, now, d);
    judge(verifier, batch, d);
}

/// A control message in its own buffer.
struct message {
    bytes buf;
    packet_view view() { return packet_view{buf.data(), uint32_t(buf.size()), nullptr}; }
};

// ---------------------------------------------------------------- TESLA

class tesla_test : public ::testing::Test {
protected:
    static constexpr uint64_t t0 = 1'000 * ms;
    static constexpr uint64_t interval = 10 * ms;
    static constexpr uint32_t delay = 2;

    void SetUp() override
    {
        tesla_params p{sender_id, t0, interval, delay, 4000};
        auto s = tesla_sender::create(e, p);
        ASSERT_TRUE(s.ok());
        sender = std::make_unique<tesla_sender>(std::move(s.value()));
    }

    void start_verifier(uint32_t hold_capacity = 4096, uint64_t clock_bound = 1 * ms)
    {
        policy.clock_offset_bound_ns = clock_bound;
        policy.hold_capacity = hold_capacity;
        verifier.add_sender(sender_id, keys.anchor(), policy);
        deliver_control(bootstrap(t0 + interval));
        ASSERT_EQ(verifier.stats().control_accepted, 1u);
    }

    message bootstrap(uint64_t now)
    {
        message m{bytes(wire::tesla_bootstrap_len)};
        EXPECT_EQ(sender->write_bootstrap(e, keys.priv, now, m.buf), wire::tesla_bootstrap_len);
        return m;
    }

    decision deliver_control(message m, uint64_t now = t0 + interval)
    {
        packet_view v = m.view();
        decision d{};
        verifier.verify_burst(e, std::span(&v, 1), now, std::span(&d, 1));
        return d;
    }

    /// n genuine packets tagged at sender time now.
    std::vector<tracked*> send(uint32_t n, uint64_t now, uint32_t inner = 100)
    {
        std::vector<tracked*> out;
        std::vector<tag_job> jobs;
        for (uint32_t k = 0; k < n; ++k) {
            tracked& t = book.add(make_packet(tesla_sender::header_len, inner), true, now);
            jobs.push_back(t.p.job());
            out.push_back(&t);
        }
        EXPECT_EQ(sender->tag_burst(e, jobs, now), n);
        return out;
    }

    void deliver(std::vector<tracked*>& batch, uint64_t now) { book.deliver(e, verifier, batch, now); }

    /// The sender's disclosure for interval i of `now`, once per interval as the gateway sends it
    /// (none before interval d); delivered at `arrival`. The forger learns the key.
    void disclose(uint64_t now, uint64_t arrival, std::map<uint32_t, chain_key>* learned = nullptr)
    {
        const uint32_t i = sender->interval_at(now);
        if (i == last_disclosure) {
            return;
        }
        last_disclosure = i;
        message m{bytes(wire::tesla_disclosure_len)};
        if (sender->write_disclosure(e, now, m.buf) == 0) {
            return;
        }
        if (learned != nullptr) {
            std::memcpy((*learned)[msecgw::load_be32(m.buf.data() + wire::tk_interval)].data(),
                        m.buf.data() + wire::tk_key, wire::key_len);
        }
        const decision d = deliver_control(std::move(m), arrival);
        EXPECT_TRUE(d.v == verdict::consumed || d.why == reason::stale_control) // K_0: the bootstrap's
            << "disclosure of interval " << i - delay << ": " << int(d.why);
    }

    /// A member's forgery: a genuine packet's header with MAC `mac_key` (or garbage) over a new payload.
    tracked& forge_from(const tracked& g, uint64_t now, int variant, const std::map<uint32_t, chain_key>& learned)
    {
        tracked& f = book.add(g.p, false, now);
        uint8_t* h = f.p.hdr();
        switch (variant % 4) {
        case 0: // same header and MAC, changed payload
            h[wire::tesla_data_len + 10 + variant % 50] ^= 0x5a;
            break;
        case 1: // random MAC
            for (size_t i = 0; i < wire::mac_len; ++i) {
                h[wire::td_mac + i] = uint8_t(rng()());
            }
            break;
        case 2: // the genuine MAC under a fresh sequence number (another GMAC nonce)
            wire::store_be64(h + wire::off_seq, 1'000'000 + uint64_t(variant));
            break;
        case 3: { // correctly MACed with the latest key it learned from a disclosure
            if (learned.empty()) {
                h[wire::td_mac] ^= 1;
                break;
            }
            const auto& [j, kj] = *learned.rbegin();
            msecgw::store_be32(h + wire::td_interval, j);
            chain_key mk;
            chain_f_prime(e, kj, mk);
            crypto::gcm_key gk;
            EXPECT_TRUE(crypto::make_gmac_key(e, mk.view(), gk).ok());
            bytes covered(h, h + wire::td_mac); // header[0..td_mac) || inner, contiguous
            covered.insert(covered.end(), h + wire::tesla_data_len, h + wire::tesla_data_len + f.p.inner);
            const crypto::gmac_op op{&gk,    h + wire::off_sender, covered.data(), uint32_t(covered.size()),
                                     nullptr, 0,                   h + wire::td_mac};
            uint8_t ok = 0;
            crypto::gmac_burst(e, std::span(&op, 1), std::span(&ok, 1));
            break;
        }
        }
        return f;
    }

    crypto::engine e = new_engine();
    key_pair keys = new_key_pair(wire::sig_alg::ed25519);
    std::unique_ptr<tesla_sender> sender;
    tesla_receiver_policy policy;
    tesla_verifier verifier;
    ledger book;
    uint32_t last_disclosure = 0;
};

TEST_F(tesla_test, MemberForgeriesAllDroppedGenuineAllPassWithinDelay)
{
    start_verifier();
    std::map<uint32_t, chain_key> learned; // keys the forger saw disclosed
    uint64_t max_delay = 0;
    uint64_t now = t0 + interval;
    int variant = 0;
    uint64_t bogus_disclosures = 0;
    for (int step = 0; step < 2500; ++step, now += 1 * ms / 2) {
        disclose(now, now + ms / 4, &learned);
        std::vector<tracked*> batch = send(4, now);
        for (int k = 0; k < 4; ++k) {
            batch.push_back(&forge_from(*batch[size_t(k)], now, variant++, learned));
        }
        deliver(batch, now + ms / 4); // network delay below the clock bound
        if (step % 50 == 25) { // the forger also discloses a bogus key for the next interval to disclose
            message m{bytes(wire::tesla_disclosure_len)};
            ASSERT_EQ(sender->write_disclosure(e, now, m.buf), wire::tesla_disclosure_len);
            msecgw::store_be32(m.buf.data() + wire::tk_interval, sender->interval_at(now) - delay + 1);
            for (size_t i = 0; i < wire::key_len; ++i) {
                m.buf[wire::tk_key + i] = uint8_t(rng()());
            }
            EXPECT_EQ(deliver_control(std::move(m), now + ms / 4).why, reason::bad_disclosure);
            ++bogus_disclosures;
        }
        book.drain(verifier, now, &max_delay);
    }
    // The sender goes idle: its disclosures release the last intervals.
    for (int k = 0; k <= int(delay) + 1; ++k, now += interval) {
        disclose(now, now);
        book.drain(verifier, now, &max_delay);
    }
    const size_t forged = book.total(false);
    ASSERT_GE(forged, 10'000u);
    EXPECT_EQ(book.count(false, true), 0u) << "a forgery was accepted";
    EXPECT_EQ(book.count(false, false), forged) << "a forgery was not counted";
    EXPECT_EQ(book.count(true, true), book.total(true));
    EXPECT_EQ(book.count(true, false), 0u);
    const counters& c = verifier.stats();
    EXPECT_EQ(c.drops(reason::forged) + c.drops(reason::unsafe) + c.drops(reason::bad_interval) +
                  c.drops(reason::replayed_packet),
              forged);
    EXPECT_GT(c.drops(reason::unsafe), 0u);    // variant 3
    EXPECT_GT(c.drops(reason::forged), 0u);    // variants 0-2
    EXPECT_EQ(c.drops(reason::bad_disclosure), bogus_disclosures);
    EXPECT_EQ(c.released, book.total(true));
    // Released within the disclosure delay: K_i arrives with the disclosure sent in interval i + d.
    EXPECT_LE(max_delay, (delay + 1) * interval) << "held longer than d + 1 intervals";
}

TEST_F(tesla_test, RepeatedDisclosureConsumedForgedOrOldOneDropped)
{
    start_verifier();
    const uint64_t now = t0 + 6 * interval + 1 * ms; // discloses K_4
    message first{bytes(wire::tesla_disclosure_len)};
    ASSERT_EQ(sender->write_disclosure(e, now, first.buf), wire::tesla_disclosure_len);
    message repeat{bytes(wire::tesla_disclosure_len)};
    ASSERT_EQ(sender->write_disclosure(e, now + interval / 2, repeat.buf), wire::tesla_disclosure_len);
    message forged = repeat;
    forged.buf[wire::tk_key] ^= 1;
    message older{bytes(wire::tesla_disclosure_len)};
    ASSERT_EQ(sender->write_disclosure(e, now - interval, older.buf), wire::tesla_disclosure_len); // K_3
    EXPECT_EQ(deliver_control(std::move(first), now).v, verdict::consumed);
    EXPECT_EQ(deliver_control(std::move(repeat), now + interval / 2).v, verdict::consumed) << "a repeat is not a drop";
    EXPECT_EQ(deliver_control(std::move(forged), now + interval / 2).why, reason::bad_disclosure);
    EXPECT_EQ(deliver_control(std::move(older), now + interval / 2).why, reason::stale_control);
    EXPECT_EQ(verifier.stats().control_accepted, 3u); // the bootstrap, K_4 and its repeat
}

TEST_F(tesla_test, LateBeyondClockBoundIsUnsafeWithinBoundIsKept)
{
    start_verifier(4096, 1 * ms);
    const uint64_t sent = t0 + 5 * interval + 9 * ms; // near the end of interval 5
    std::vector<tracked*> early = send(1, sent);
    std::vector<tracked*> late = send(1, sent);
    // Arrives while the sender (up to 1 ms ahead) cannot have reached interval 5 + d = 7.
    deliver(early, t0 + 7 * interval - 1 * ms - 1);
    // Arrives at a time where the sender may be in interval 7 and may have disclosed K_5.
    deliver(late, t0 + 7 * interval - 1 * ms);
    EXPECT_EQ(early[0]->dropped, 0);
    EXPECT_EQ(late[0]->dropped, 1);
    EXPECT_EQ(late[0]->why, reason::unsafe);
    EXPECT_EQ(verifier.stats().drops(reason::unsafe), 1u);
    // The kept one is released once K_5 is disclosed.
    message m{bytes(wire::tesla_disclosure_len)};
    ASSERT_EQ(sender->write_disclosure(e, t0 + 7 * interval, m.buf), wire::tesla_disclosure_len);
    deliver_control(std::move(m), t0 + 7 * interval);
    book.drain(verifier);
    EXPECT_EQ(early[0]->released, 1);
    EXPECT_EQ(late[0]->released, 0);
}

TEST_F(tesla_test, LostDisclosuresRecoveredThroughTheChain)
{
    start_verifier();
    size_t delivered = 0;
    for (uint32_t i = 1; i <= 20; ++i) {
        const uint64_t now = t0 + i * interval + 3 * ms;
        std::vector<tracked*> batch = send(3, now);
        if (i >= 8 && i <= 12) {
            // Lost in the network, with the disclosures of K_6 .. K_10 sent in those intervals.
            message lost{bytes(wire::tesla_disclosure_len)};
            ASSERT_EQ(sender->write_disclosure(e, now, lost.buf), wire::tesla_disclosure_len);
            last_disclosure = i;
            continue;
        }
        disclose(now, now + 1 * ms);
        delivered += batch.size();
        deliver(batch, now + 1 * ms);
        if (i == 7) {
            book.drain(verifier);
            EXPECT_EQ(verifier.stats().released, 15u) << "intervals 1 .. 5 released by the disclosure of K_5";
        }
    }
    // Idle sender: its disclosure of K_19 is lost too; the one of K_20 arrives.
    const uint64_t end = t0 + (20 + delay) * interval + 3 * ms;
    message m{bytes(wire::tesla_disclosure_len)};
    ASSERT_EQ(sender->write_disclosure(e, end, m.buf), wire::tesla_disclosure_len);
    EXPECT_EQ(msecgw::load_be32(m.buf.data() + wire::tk_interval), 20u);
    EXPECT_EQ(deliver_control(std::move(m), end).v, verdict::consumed);
    book.drain(verifier);
    EXPECT_EQ(book.count(true, true), delivered) << "a delivered genuine packet was not released";
    EXPECT_EQ(book.count(true, false), 0u);
    EXPECT_EQ(verifier.stats().released, delivered);
}

TEST_F(tesla_test, BootstrapMustBeSignedByTheAnchorAndComeFirst)
{
    verifier.add_sender(sender_id, keys.anchor(), policy);
    std::vector<tracked*> early = send(1, t0 + interval + 1);
    deliver(early, t0 + interval + 2);
    EXPECT_EQ(early[0]->why, reason::not_bootstrapped);

    key_pair other = new_key_pair(wire::sig_alg::ed25519);
    message forged{bytes(wire::tesla_bootstrap_len)};
    ASSERT_EQ(sender->write_bootstrap(e, other.priv, t0 + interval, forged.buf), wire::tesla_bootstrap_len);
    EXPECT_EQ(deliver_control(std::move(forged)).why, reason::bad_signature);
    message good = bootstrap(t0 + interval);
    message replay = good;
    EXPECT_EQ(deliver_control(std::move(good)).v, verdict::consumed);
    EXPECT_EQ(deliver_control(std::move(replay)).why, reason::stale_control);
}

TEST_F(tesla_test, FullHoldBufferOverflowsAndCounts)
{
    start_verifier(8);
    std::vector<tracked*> batch = send(12, t0 + interval + 1);
    deliver(batch, t0 + interval + 2);
    EXPECT_EQ(verifier.stats().drops(reason::overflow), 4u);
    EXPECT_EQ(verifier.stats().held, 8u);
}

// ---------------------------------------------------------------- manifest

class manifest_test : public ::testing::Test {
protected:
    void start(const manifest_receiver_policy& p, uint32_t n = 64)
    {
        auto s = manifest_sender::create({sender_id, n, 0});
        ASSERT_TRUE(s.ok());
        sender = std::make_unique<manifest_sender>(std::move(s.value()));
        verifier.add_sender(sender_id, keys.anchor(), p);
    }

    std::vector<tracked*> send(uint32_t n, uint64_t now)
    {
        std::vector<tracked*> out;
        std::vector<tag_job> jobs;
        for (uint32_t k = 0; k < n; ++k) {
            tracked& t = book.add(make_packet(manifest_sender::header_len, 200 + k), true, now);
            jobs.push_back(t.p.job());
            out.push_back(&t);
        }
        EXPECT_EQ(sender->tag_burst(e, jobs, now), n);
        return out;
    }

    message manifest()
    {
        message m{bytes(sender->max_manifest_len())};
        m.buf.resize(sender->write_manifest(e, keys.priv, m.buf));
        EXPECT_FALSE(m.buf.empty());
        return m;
    }

    void deliver(std::vector<tracked*>& batch, uint64_t now) { book.deliver(e, verifier, batch, now); }

    decision deliver_control(message& m, uint64_t now)
    {
        packet_view v = m.view();
        decision d{};
        verifier.verify_burst(e, std::span(&v, 1), now, std::span(&d, 1));
        book.drain(verifier);
        return d;
    }

    crypto::engine e = new_engine();
    key_pair keys = new_key_pair(wire::sig_alg::ecdsa_p256);
    std::unique_ptr<manifest_sender> sender;
    manifest_verifier verifier;
    ledger book;
};

TEST_F(manifest_test, MemberForgeriesAllDroppedGenuineAllPass)
{
    start({.hold_capacity = 256, .hold_timeout_ns = 50 * ms});
    key_pair member = new_key_pair(wire::sig_alg::ecdsa_p256);
    uint64_t now = 1'000 * ms;
    for (int round = 0; round < 160; ++round, now += 1 * ms) {
        std::vector<tracked*> batch = send(64, now);
        for (int k = 0; k < 64; ++k) { // same header, new payload
            tracked& f = book.add(batch[size_t(k)]->p, false, now);
            f.p.buf[manifest_sender::header_len + 20 + size_t(k)] ^= 0xff;
            batch.push_back(&f);
        }
        deliver(batch, now);
        // The member also signs a manifest of its forgeries with its own key: refused.
        message fake = manifest();
        message real = fake; // the genuine one
        std::memcpy(fake.buf.data() + wire::mf_digests, batch[64]->p.buf.data(), 16);
        ASSERT_TRUE(sign_manifest(e, member.priv, fake.buf));
        wire::store_be64(fake.buf.data() + wire::off_seq, wire::load_be64(fake.buf.data() + wire::off_seq) + 1000);
        EXPECT_EQ(deliver_control(fake, now).why, reason::bad_signature);
        EXPECT_EQ(deliver_control(real, now).v, verdict::consumed);
    }
    const size_t forged = book.total(false);
    ASSERT_GE(forged, 10'000u);
    EXPECT_EQ(book.count(false, true), 0u);
    EXPECT_EQ(book.count(false, false), forged);
    EXPECT_EQ(verifier.stats().drops(reason::forged), forged);
    EXPECT_EQ(book.count(true, true), book.total(true));
    EXPECT_EQ(verifier.stats().drops(reason::bad_signature), 160u);
}

TEST_F(manifest_test, LostManifestWaitsAtMostTheTimeoutThenDrops)
{
    start({.hold_capacity = 256, .hold_timeout_ns = 20 * ms});
    std::vector<tracked*> batch = send(10, 0);
    deliver(batch, 100 * ms);
    (void)manifest(); // lost
    verifier.poll(100 * ms + 20 * ms - 1);
    EXPECT_EQ(book.drain(verifier), 0u) << "released or dropped before the timeout";
    verifier.poll(100 * ms + 20 * ms);
    EXPECT_EQ(book.drain(verifier), 10u) << "held beyond the timeout";
    EXPECT_EQ(book.count(true, false), 10u);
    EXPECT_EQ(verifier.stats().drops(reason::timeout), 10u);
    // Later packets still verify with the next manifest.
    std::vector<tracked*> next = send(5, 0);
    deliver(next, 200 * ms);
    message m = manifest();
    EXPECT_EQ(deliver_control(m, 200 * ms).v, verdict::consumed);
    EXPECT_EQ(book.count(true, true), 5u);
}

TEST_F(manifest_test, LostManifestInBestEffortReleasesUnverified)
{
    start({.hold_capacity = 256, .hold_timeout_ns = 20 * ms, .best_effort = true});
    std::vector<tracked*> batch = send(10, 0);
    deliver(batch, 100 * ms);
    (void)manifest(); // lost
    verifier.poll(120 * ms);
    book.drain(verifier);
    EXPECT_EQ(book.count(true, true), 10u);
    EXPECT_EQ(verifier.stats().released_unverified, 10u);
    EXPECT_EQ(verifier.stats().released, 0u);
}

TEST_F(manifest_test, ReplayedManifestRefusedAndReplayedPacketDropped)
{
    start({.hold_capacity = 256, .hold_timeout_ns = 20 * ms});
    std::vector<tracked*> first = send(8, 0);
    message m1 = manifest();
    std::vector<tracked*> second = send(8, 0);
    message m2 = manifest();
    deliver(first, 1 * ms);
    deliver(second, 1 * ms);
    EXPECT_EQ(deliver_control(m2, 1 * ms).v, verdict::consumed);
    EXPECT_EQ(deliver_control(m1, 1 * ms).why, reason::replayed_manifest) << "older manifest after a newer one";
    EXPECT_EQ(deliver_control(m2, 1 * ms).why, reason::replayed_manifest) << "same manifest twice";
    EXPECT_EQ(verifier.stats().drops(reason::replayed_manifest), 2u);
    EXPECT_EQ(book.count(true, true), 8u); // second's packets
    // A replayed genuine packet (re-sent by a member) is released once only.
    std::vector<tracked*> again{&book.add(second[0]->p, false, 0)};
    deliver(again, 2 * ms);
    EXPECT_EQ(again[0]->why, reason::replayed_packet);
}

TEST_F(manifest_test, ManifestBeforeItsPacketsReleasesThemAtOnce)
{
    start({.hold_capacity = 256, .hold_timeout_ns = 20 * ms});
    std::vector<tracked*> batch = send(16, 0);
    message m = manifest();
    EXPECT_EQ(deliver_control(m, 1 * ms).v, verdict::consumed);
    deliver(batch, 2 * ms);
    EXPECT_EQ(book.count(true, true), 16u);
    EXPECT_EQ(verifier.stats().held, 0u);
}

// ---------------------------------------------------------------- sign

class sign_test : public ::testing::TestWithParam<wire::sig_alg> {};

TEST_P(sign_test, MemberForgeriesAllDroppedGenuineAllPass)
{
    crypto::engine e = new_engine();
    key_pair keys = new_key_pair(GetParam());
    key_pair member = new_key_pair(GetParam());
    sign_sender sender(sender_id, std::move(keys.priv));
    sign_sender impostor(sender_id, std::move(member.priv));
    sign_verifier verifier;
    verifier.add_sender(sender_id, keys.anchor());
    ledger book;
    const int rounds = GetParam() == wire::sig_alg::ed25519 ? 40 : 10;
    for (int r = 0; r < rounds; ++r) {
        std::vector<tracked*> batch;
        std::vector<tag_job> jobs, fake_jobs;
        for (int k = 0; k < 25; ++k) {
            tracked& g = book.add(make_packet(sign_sender::header_len, 64 + uint32_t(k) * 50), true, 0);
            jobs.push_back(g.p.job());
            batch.push_back(&g);
        }
        std::vector<uint8_t> ok(jobs.size());
        ASSERT_EQ(sender.tag_burst(e, jobs, ok), jobs.size());
        const size_t genuine = batch.size();
        for (size_t k = 0; k < genuine; ++k) {
            for (int v = 0; v < 9; ++v) { // payload or header changed under the real signature
                tracked& f = book.add(batch[k]->p, false, 0);
                f.p.buf[sign_sender::header_len + size_t(v) * 7 % f.p.inner] ^= uint8_t(1 + v);
                batch.push_back(&f);
            }
            tracked& f = book.add(batch[k]->p, false, 0); // signed with the member's own key
            fake_jobs.push_back(f.p.job());
            batch.push_back(&f);
        }
        std::vector<uint8_t> ok2(fake_jobs.size());
        ASSERT_EQ(impostor.tag_burst(e, fake_jobs, ok2), fake_jobs.size());
        std::vector<packet_view> v;
        for (tracked* t : batch) {
            v.push_back(view_of(*t, sign_sender::trailer_len));
        }
        std::vector<decision> d(v.size());
        verifier.verify_burst(e, v, d);
        for (size_t k = 0; k < batch.size(); ++k) {
            ledger::apply(*batch[k], d[k].v, d[k].why);
        }
    }
    const size_t forged = book.total(false);
    if (GetParam() == wire::sig_alg::ed25519) {
        ASSERT_GE(forged, 10'000u);
    }
    EXPECT_EQ(book.count(false, true), 0u);
    EXPECT_EQ(book.count(false, false), forged);
    EXPECT_EQ(verifier.stats().drops(reason::bad_signature), forged);
    EXPECT_EQ(book.count(true, true), book.total(true));
    // A genuine packet sent again by a member is refused by the sequence window.
    tracked& again = book.add(book.all.front().p, true, 0);
    packet_view pv = view_of(again, sign_sender::trailer_len);
    decision d{};
    verifier.verify_burst(e, std::span(&pv, 1), std::span(&d, 1));
    EXPECT_EQ(d.why, reason::replayed_packet);
}

INSTANTIATE_TEST_SUITE_P(algs, sign_test, ::testing::Values(wire::sig_alg::ed25519, wire::sig_alg::ecdsa_p256),
                         [](const auto& i) { return i.param == wire::sig_alg::ed25519 ? "ed25519" : "ecdsa_p256"; });

} // namespace
