#pragma once
// One GCKS on an ephemeral 127.0.0.1 port and helpers to make and drive group members over
// real UDP sockets. Progress is bounded by a number of poll rounds, never asserted on time.

#include <poll.h>

#include <functional>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "gkm/gkm.hh"

namespace msecgw::gkm::test {

inline bytes psk_of(const std::string& id)
{
    return bytes(id.begin(), id.end());  // test keys only
}

inline traffic_selector ipv4_selector(uint32_t first, uint32_t last)
{
    traffic_selector ts;
    ts.ts_type = 7;
    ts.ip_protocol = 0;
    auto address = [](uint32_t a) { return bytes{uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)}; };
    ts.start_address = address(first);
    ts.end_address = address(last);
    return ts;
}

inline gcks_config default_gcks_config()
{
    gcks_config c;
    c.listen = endpoint{0x7f000001, 0};
    for (const char* id : {"gm-a", "gm-b", "gm-outsider"}) {
        c.peers.push_back(psk_identity{id, psk_of(id)});
    }
    group_config g;
    g.group_id = 7;
    g.members = {"gm-a", "gm-b"};
    g.senders = {"gm-a", "gm-b"};
    g.source = ipv4_selector(0, 0xffffffff);
    g.destination = ipv4_selector(0xef010101, 0xef010101);  // 239.1.1.1
    g.tek_key_bits = 256;
    c.groups.push_back(g);
    return c;
}

class gkm_loopback : public ::testing::Test {
protected:
    void SetUp() override { start_gcks(default_gcks_config()); }

    void start_gcks(gcks_config config)
    {
        config.observer = observer;
        result<std::unique_ptr<gcks>> g = gcks::create(std::move(config));
        ASSERT_TRUE(g.ok()) << g.err().detail;
        server = std::move(*g);
    }

    member_config member(const std::string& id)
    {
        member_config c;
        c.gcks = server->local();
        c.identity = id;
        c.psk = psk_of(id);
        c.group_id = 7;
        c.observer = observer;
        return c;
    }

    group_member& add_member(member_config c)
    {
        result<std::unique_ptr<group_member>> m = group_member::create(std::move(c));
        EXPECT_TRUE(m.ok()) << m.err().detail;
        members.push_back(std::move(*m));
        return *members.back();
    }

    /// Ticks everyone until every member has left the in-progress states (or rounds run out).
    void run_registrations(int max_rounds = 400)
    {
        for (group_member_ptr& m : members) {
            if (m->state() == member_state::idle) {
                m->start(clock::now());
            }
        }
        pump([this] { return all_settled(); }, max_rounds);
    }

    /// Polls every socket briefly, then ticks the GCKS and every member, until pred holds or
    /// max_rounds rounds ran. Returns pred().
    template <class Pred>
    bool pump(Pred pred, int max_rounds = 400)
    {
        for (int round = 0; round < max_rounds && !pred(); ++round) {
            std::vector<pollfd> fds{{server->fd(), POLLIN, 0}};
            for (group_member_ptr& m : members) {
                fds.push_back({m->fd(), POLLIN, 0});
            }
            ::poll(fds.data(), fds.size(), 20);
            server->tick(clock::now());
            for (group_member_ptr& m : members) {
                m->tick(clock::now());
            }
        }
        return pred();
    }

    bool all_settled() const
    {
        for (const group_member_ptr& m : members) {
            member_state s = m->state();
            if (s == member_state::ike_sa_init_sent || s == member_state::gsa_auth_sent) {
                return false;
            }
        }
        return true;
    }

    using group_member_ptr = std::unique_ptr<group_member>;
    std::unique_ptr<gcks> server;
    std::vector<group_member_ptr> members;
    datagram_observer observer;  ///< set before SetUp's start_gcks by tests that capture
};

} // namespace msecgw::gkm::test
