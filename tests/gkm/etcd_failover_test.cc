// [H] Cooperating key servers on a real 3-member etcd cluster (loopback ports) with real UDP
// group members: the leader killed during periodic rekeys (a standby takes over with the same
// TEK, KEK and signing key, no rekey storm), a leader paused past its lease, members failing
// over along their key server list, every SPI / Sender-ID / Message ID issued checked for
// reuse, and etcd losing one member (nothing changes) or two (registrations stop, keys stay).
// Timings are printed; only a generous take-over bound (TTL + 5 s) is asserted.

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "../etcd/etcd_cluster.hh"
#include "common/byte_order.hh"
#include "gkm/gkm.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace std::chrono_literals;

namespace {

constexpr uint8_t gsa_rekey_exchange = 41;
constexpr uint32_t group = 5;
constexpr uint32_t ttl = 2;       // leader lease, seconds
constexpr uint32_t period = 2;    // periodic rekeys, seconds

bytes psk_of(const std::string& id)
{
    return bytes(id.begin(), id.end());  // test keys only
}

traffic_selector any_v4()
{
    traffic_selector ts;
    ts.ts_type = 7;
    ts.start_address = {0, 0, 0, 0};
    ts.end_address = {255, 255, 255, 255};
    return ts;
}

/// Every value any key server put on the wire or any member was given, to find a reuse.
struct issued_log {
    std::map<uint32_t, bytes> message_ids;  ///< GSA_REKEY Message ID -> the datagram
    std::map<uint32_t, bytes> spis;         ///< TEK SPI -> its key
    std::vector<uint32_t> sender_ids;
    int reused = 0;

    void rekey_sent(byte_view d)
    {
        const uint32_t id = load_be32(d.data() + 20);
        auto [it, fresh] = message_ids.emplace(id, bytes(d.begin(), d.end()));
        if (!fresh && !std::equal(it->second.begin(), it->second.end(), d.begin(), d.end())) {
            ++reused;  // the same Message ID on two different rekeys
            ADD_FAILURE() << "GSA_REKEY Message ID " << id << " issued twice";
        }
    }
    void tek_seen(const tek& t)
    {
        const bytes key(t.key.view().begin(), t.key.view().end());
        auto [it, fresh] = spis.emplace(t.spi, key);
        if (!fresh && it->second != key) {
            ++reused;
            ADD_FAILURE() << "TEK SPI " << t.spi << " issued twice";
        }
    }
};

class etcd_failover : public etcd::test::etcd_cluster {
protected:
    void SetUp() override
    {
        etcd_cluster::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        key_path = (c->dir / "storage.key").string();
        std::ofstream(key_path) << std::string(64, 'a') << "\n";
        ::chmod(key_path.c_str(), 0600);
    }

    gcks_config server_config(const std::string& name, uint16_t port)
    {
        gcks_config cfg;
        cfg.listen = endpoint{0x7f000001, port};
        for (int i = 1; i <= 9; ++i) {
            const std::string id = "gm-" + std::to_string(i);
            cfg.peers.push_back(psk_identity{id, psk_of(id)});
        }
        group_config g;
        g.group_id = group;
        for (int i = 1; i <= 9; ++i) {
            g.members.push_back("gm-" + std::to_string(i));
        }
        g.senders = g.members;
        g.source = any_v4();
        g.destination = any_v4();
        g.rekey_period_seconds = period;
        cfg.groups.push_back(g);
        cfg.storage_key_path = key_path;
        cfg.etcd_endpoints = c->endpoints();
        cfg.etcd_prefix = "/msecgw/test-gcks";
        cfg.candidate_id = name;
        cfg.leader_ttl_seconds = lease_ttl;
        cfg.sender_id_block = 2;  // small blocks: many reservations across fail-overs
        cfg.observer = [this](datagram_direction d, const endpoint&, const endpoint&, byte_view data) {
            if (d == datagram_direction::sent && data.size() > 24 && data[18] == gsa_rekey_exchange) {
                log.rekey_sent(data);
            }
        };
        return cfg;
    }

    /// Key servers on fixed ports (members list them before they start), base from the pid.
    uint16_t port_of(int i) const { return uint16_t(40000 + (getpid() % 500) * 8 + i); }

    void start_server(int i)
    {
        result<std::unique_ptr<gcks>> s = gcks::create(server_config("ks-" + std::to_string(i), port_of(i)));
        ASSERT_TRUE(s.ok()) << s.err().detail;
        servers[i] = std::move(*s);
    }

    gkm::group_member& add_member(int n)
    {
        member_config m;
        m.identity = "gm-" + std::to_string(n);
        m.psk = psk_of(m.identity);
        m.group_id = group;
        for (int i = 0; i < 3; ++i) {
            m.key_servers.push_back(endpoint{0x7f000001, port_of(i)});
        }
        m.gcks = m.key_servers.front();
        m.retransmit = retransmit_policy{200ms, 3};  // ~1.4 s per key server
        result<std::unique_ptr<gkm::group_member>> gm = gkm::group_member::create(std::move(m));
        EXPECT_TRUE(gm.ok()) << gm.err().detail;
        members.push_back(std::move(*gm));
        members.back()->start(clock::now());
        return *members.back();
    }

    /// Ticks every live, unpaused key server and every member until pred holds or `limit` passed.
    template <class Pred>
    bool run(std::chrono::milliseconds limit, Pred pred)
    {
        const auto end = clock::now() + limit;
        while (clock::now() < end) {
            if (pred()) {
                return true;
            }
            std::vector<pollfd> fds;
            for (int i = 0; i < 3; ++i) {
                if (servers[i] && !paused[i]) {
                    fds.push_back({servers[i]->fd(), POLLIN, 0});
                }
            }
            for (auto& m : members) {
                fds.push_back({m->fd(), POLLIN, 0});
            }
            ::poll(fds.data(), fds.size(), 10);
            for (int i = 0; i < 3; ++i) {
                if (servers[i] && !paused[i]) {
                    servers[i]->tick(clock::now());
                }
            }
            for (auto& m : members) {
                m->tick(clock::now());
                if (const group_membership* gm = m->membership()) {
                    for (const tek& t : gm->teks) {
                        log.tek_seen(t);
                    }
                }
            }
        }
        return pred();
    }
    void run_for(std::chrono::milliseconds d)
    {
        run(d, [] { return false; });
    }

    int leader() const
    {
        for (int i = 0; i < 3; ++i) {
            if (servers[i] && !paused[i] && servers[i]->leading()) {
                return i;
            }
        }
        return -1;
    }
    bool registered(size_t from) const
    {
        for (size_t i = from; i < members.size(); ++i) {
            if (members[i]->state() != member_state::registered) {
                return false;
            }
        }
        return true;
    }
    void note_sender_ids(size_t from)
    {
        for (size_t i = from; i < members.size(); ++i) {
            if (const group_membership* gm = members[i]->membership(); gm && gm->sender_id) {
                log.sender_ids.push_back(*gm->sender_id);
            }
        }
    }

    std::string key_path;
    uint32_t lease_ttl = ttl;
    std::unique_ptr<gcks> servers[3];
    bool paused[3] = {false, false, false};
    std::vector<std::unique_ptr<gkm::group_member>> members;
    issued_log log;
};

} // namespace

TEST_F(etcd_failover, KilledAndPausedLeadersAreReplacedWithoutReuseOrStorm)
{
    for (int i = 0; i < 3; ++i) {
        start_server(i);
        ASSERT_FALSE(HasFatalFailure());
    }
    ASSERT_EQ(leader(), 0) << "the first key server leads";
    EXPECT_FALSE(servers[1]->leading());
    EXPECT_FALSE(servers[2]->leading());
    EXPECT_EQ(servers[1]->rekey_public_key(), servers[0]->rekey_public_key()) << "one signing key, in etcd";
    for (int n = 1; n <= 3; ++n) {
        add_member(n);
    }
    ASSERT_TRUE(run(10s, [&] { return registered(0); }));
    note_sender_ids(0);
    run_for(std::chrono::milliseconds(period * 1000 * 2 + 500));  // two periodic rekeys from ks-0
    const uint64_t accepted_before = members[0]->counters().rekeys_accepted;
    EXPECT_GE(accepted_before, 1u);

    // (a) kill -9 of the leader: the object goes without resigning; its lease runs out.
    const uint32_t spi_before = members[0]->membership()->teks.front().spi;
    servers[0].reset();
    const auto killed = clock::now();
    ASSERT_TRUE(run(std::chrono::seconds(ttl + 5), [&] { return leader() > 0; })) << "no standby took over";
    const auto takeover = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - killed);
    std::printf("take-over after kill: %lld ms (leader_ttl_seconds %u)\n", static_cast<long long>(takeover.count()), ttl);
    const int next = leader();
    std::optional<group_status> st = servers[next]->status(group);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->tek_spi, spi_before) << "the new leader holds the same TEK";
    EXPECT_EQ(st->members, 3u) << "member addresses from etcd";

    // The schedule continues: over 3 periods about 3 rekeys (to 3 members), not a storm.
    const uint64_t sent_before = servers[next]->counters().rekeys_sent;
    run_for(std::chrono::milliseconds(period * 1000 * 3));
    const uint64_t sent = servers[next]->counters().rekeys_sent - sent_before;
    std::printf("rekey datagrams from the new leader over %u s: %llu (3 members)\n", period * 3,
                static_cast<unsigned long long>(sent));
    EXPECT_GE(sent, 3u);
    EXPECT_LE(sent, 4u * 3u) << "no rekey storm after the take-over";
    for (auto& m : members) {
        EXPECT_GT(m->counters().rekeys_accepted, accepted_before) << "the new leader's rekeys verify (same signing key, KEK)";
        EXPECT_EQ(m->counters().rekeys_forged, 0u);
        EXPECT_EQ(m->counters().rekeys_missed, 0u) << "Message IDs continue without a gap";
        EXPECT_EQ(m->membership()->teks.front().spi, servers[next]->status(group)->tek_spi);
    }

    // New members fail over from the dead first server (and a standby) to the leader.
    for (int n = 4; n <= 5; ++n) {
        add_member(n);
    }
    ASSERT_TRUE(run(20s, [&] { return registered(3); }));
    note_sender_ids(3);
    EXPECT_GE(members[3]->counters().gcks_failovers, 1u);
    EXPECT_EQ(members[3]->key_server(), servers[next]->local());

    // (b) the leader pauses past its lease (a partition from etcd looks the same to the others).
    paused[next] = true;
    const auto paused_at = clock::now();
    ASSERT_TRUE(run(std::chrono::seconds(ttl + 5), [&] { return leader() >= 0; })) << "no take-over after a pause";
    std::printf("take-over after pause: %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - paused_at).count()));
    const int third = leader();
    ASSERT_NE(third, next);
    run_for(std::chrono::milliseconds(period * 1000 + 500));
    // It comes back: it must find it no longer leads, and send nothing.
    const uint64_t stale_sent = servers[next]->counters().rekeys_sent;
    paused[next] = false;
    run_for(3s);
    EXPECT_FALSE(servers[next]->leading());
    EXPECT_EQ(servers[next]->counters().rekeys_sent, stale_sent) << "a deposed leader sends no rekey";
    EXPECT_EQ(leader(), third);
    for (int n = 6; n <= 7; ++n) {
        add_member(n);
    }
    ASSERT_TRUE(run(20s, [&] { return registered(5); }));
    note_sender_ids(5);
    run_for(std::chrono::milliseconds(period * 1000 + 500));
    for (auto& m : members) {
        EXPECT_EQ(m->state(), member_state::registered);
        EXPECT_EQ(m->counters().rekeys_forged, 0u);
    }

    // No value issued twice: Message IDs on the wire, TEK SPIs, Sender-IDs.
    std::set<uint32_t> sids(log.sender_ids.begin(), log.sender_ids.end());
    EXPECT_EQ(sids.size(), log.sender_ids.size()) << "a Sender-ID was handed out twice";
    EXPECT_EQ(log.sender_ids.size(), 7u);
    EXPECT_EQ(log.reused, 0);
    std::printf("issued: %zu Message IDs, %zu TEK SPIs, %zu Sender-IDs, none twice\n", log.message_ids.size(),
                log.spis.size(), log.sender_ids.size());
    EXPECT_GE(log.message_ids.size(), 5u);
    EXPECT_GE(log.spis.size(), 4u);
}

TEST_F(etcd_failover, LosingOneEtcdMemberChangesNothingLosingTwoStopsRegistrations)
{
    lease_ttl = 4;  // rides out etcd's own re-election (election timeout 500 ms) when its leader goes
    for (int i = 0; i < 2; ++i) {
        start_server(i);
        ASSERT_FALSE(HasFatalFailure());
    }
    ASSERT_EQ(leader(), 0);
    for (int n = 1; n <= 2; ++n) {
        add_member(n);
    }
    ASSERT_TRUE(run(10s, [&] { return registered(0); }));

    c->stop(0);  // the first endpoint of every client
    run_for(std::chrono::milliseconds(period * 1000 + 1000));
    EXPECT_EQ(leader(), 0) << "one etcd member down: the leader stays";
    EXPECT_EQ(servers[0]->counters().leader_step_downs, 0u);
    add_member(3);
    ASSERT_TRUE(run(10s, [&] { return registered(2); })) << "registrations go on with two of three etcd members";

    const uint32_t spi = members[0]->membership()->teks.front().spi;
    c->stop(1);  // no quorum
    run_for(std::chrono::seconds(lease_ttl + 2));
    EXPECT_EQ(leader(), -1) << "without quorum nobody leads";
    EXPECT_GE(servers[0]->counters().leader_step_downs, 1u);
    EXPECT_GT(servers[0]->counters().etcd_errors, 0u);
    EXPECT_FALSE(servers[0]->cluster_error().empty());
    std::printf("without quorum: %s\n", servers[0]->cluster_error().c_str());
    gkm::group_member& late = add_member(4);
    // Every tick now waits for etcd's timeout (the price of blocking calls on the control
    // thread), so the member's retransmissions run slowly: a generous bound.
    run(60s, [&] { return late.state() == member_state::timed_out; });
    EXPECT_EQ(late.state(), member_state::timed_out) << "no new registration without quorum";
    EXPECT_GT(servers[0]->counters().not_leader_dropped + servers[1]->counters().not_leader_dropped, 0u);
    for (size_t i = 0; i < 3; ++i) {
        ASSERT_NE(members[i]->membership(), nullptr) << "members keep their keys";
        EXPECT_FALSE(members[i]->membership()->teks.empty());
    }
    EXPECT_NE(members[0]->membership()->teks.front().spi, 0u);
    (void)spi;
}

TEST_F(etcd_failover, AResigningLeaderHandsOverWithoutWaitingForTheLease)
{
    lease_ttl = 10;
    for (int i = 0; i < 2; ++i) {
        start_server(i);
        ASSERT_FALSE(HasFatalFailure());
    }
    add_member(1);
    ASSERT_TRUE(run(10s, [&] { return registered(0); }));
    servers[0]->resign();  // a clean stop (key_manager does it when msecgw exits)
    EXPECT_FALSE(servers[0]->leading());
    const auto resigned = clock::now();
    ASSERT_TRUE(run(std::chrono::seconds(lease_ttl + 5), [&] { return leader() == 1; }));
    std::printf("take-over after a resignation: %lld ms (leader_ttl_seconds %u)\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - resigned).count()),
                lease_ttl);
    run_for(2s);
    EXPECT_FALSE(servers[0]->leading()) << "a resigned key server does not campaign again";
    EXPECT_EQ(servers[1]->status(group)->members, 1u);
}
