// Missed-rekey recovery in the group member: a Message ID gap or a TEK that outlived its lifetime
// makes the member re-register on its own, keeping its keys until the current ones arrive.

#include <sys/socket.h>

#include <gtest/gtest.h>

#include "loopback_fixture.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace msecgw::gkm::test;

class gkm_recovery : public gkm_loopback {
protected:
    void register_two(gcks_config config, member_config a_config)
    {
        start_gcks(std::move(config));
        a_config.gcks = server->local();  // a learns the rekey key from AUTH_KEY (a restarted GCKS may have a new one)
        member_config bc = member("gm-b");
        bc.gcks_public_key = server->rekey_public_key();
        a = &add_member(std::move(a_config));
        b = &add_member(std::move(bc));
        run_registrations();
        ASSERT_EQ(a->state(), member_state::registered) << a->last_error();
        ASSERT_EQ(b->state(), member_state::registered) << b->last_error();
    }

    /// A rekey that member a never sees: the datagram is taken off its socket before it ticks.
    void rekey_missed_by_a()
    {
        const uint64_t b_before = b->counters().rekeys_accepted;
        ASSERT_TRUE(server->rekey(7).ok());
        uint8_t buf[2048];
        ASSERT_GT(::recv(a->fd(), buf, sizeof buf, MSG_DONTWAIT), 0);  // loopback: already queued
        ASSERT_TRUE(pump([&] { return b->counters().rekeys_accepted == b_before + 1; }));
    }

    bool a_recovered() const { return a->state() == member_state::registered && a->counters().reregistrations == 1; }

    /// a holds the TEK the GCKS holds now, the same one b has.
    void expect_current_tek()
    {
        const tek& ours = a->membership()->teks[0];
        EXPECT_EQ(ours.spi, server->status(7)->tek_spi);
        EXPECT_EQ(ours.spi, b->membership()->teks[0].spi);
        EXPECT_TRUE(equal_constant_time(ours.key.view(), b->membership()->teks[0].key.view()));
    }

    gkm::group_member* a = nullptr;
    gkm::group_member* b = nullptr;
};

TEST_F(gkm_recovery, MessageIdGapMakesTheMemberReregisterAndRecover)
{
    register_two(default_gcks_config(), member("gm-a"));
    const uint32_t sender_id = *a->membership()->sender_id;
    rekey_missed_by_a();
    EXPECT_EQ(a->counters().rekeys_accepted, 0u);

    ASSERT_TRUE(server->rekey(7).ok());  // a sees this one and the gap before it
    ASSERT_TRUE(pump([&] { return a_recovered(); }));
    EXPECT_EQ(a->counters().rekeys_missed, 1u);
    EXPECT_EQ(a->counters().rekeys_accepted, 1u);
    expect_current_tek();
    EXPECT_NE(*a->membership()->sender_id, sender_id);  // a fresh Sender-ID, never a reused one
    EXPECT_EQ(server->counters().registrations, 3u);

    // Back in step: the next rekey is accepted without a gap or another registration.
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return a->counters().rekeys_accepted == 2; }));
    EXPECT_EQ(a->counters().rekeys_missed, 1u);
    EXPECT_EQ(a->counters().reregistrations, 1u);
    EXPECT_EQ(a->counters().rekeys_replayed, 0u);
    expect_current_tek();
}

TEST_F(gkm_recovery, ExpiredTekMakesTheMemberReregisterAndRecover)
{
    gcks_config config = default_gcks_config();
    config.groups[0].tek_lifetime_seconds = 5;
    register_two(std::move(config), member("gm-a"));
    const uint32_t stale = a->membership()->teks[0].spi;
    rekey_missed_by_a();  // the only rekey: no gap will ever show

    a->tick(clock::now() + std::chrono::seconds(2));  // within the lifetime: nothing happens
    EXPECT_EQ(a->counters().reregistrations, 0u);
    a->tick(clock::now() + std::chrono::seconds(6));  // lifetime over, no rekey came
    EXPECT_EQ(a->state(), member_state::ike_sa_init_sent);
    ASSERT_NE(a->membership(), nullptr);  // the keys stay usable while it re-registers
    ASSERT_TRUE(pump([&] { return a_recovered(); }));
    expect_current_tek();
    ASSERT_EQ(a->membership()->teks.size(), 2u);
    EXPECT_EQ(a->membership()->teks[1].spi, stale);  // the old TEK kept for the overlap
}

TEST_F(gkm_recovery, GapRecoveryCanBeTurnedOff)
{
    member_config c = member("gm-a");
    c.reregister_on_gap = false;
    register_two(default_gcks_config(), std::move(c));
    rekey_missed_by_a();
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return a->counters().rekeys_accepted == 1; }));
    EXPECT_EQ(a->counters().rekeys_missed, 1u);
    EXPECT_EQ(a->counters().reregistrations, 0u);
    expect_current_tek();  // the rekey it did get carried the current TEK
}

TEST_F(gkm_recovery, RecoveryRefusedByTheGcksDropsTheKeys)
{
    gcks_config config = default_gcks_config();
    config.groups[0].tek_lifetime_seconds = 5;
    register_two(config, member("gm-a"));
    // The GCKS restarts on the same port with gm-a no longer a member, then a's TEK expires.
    const uint16_t port = server->local().port;
    server.reset();
    config.listen.port = port;
    config.groups[0].members = {"gm-b"};
    start_gcks(std::move(config));
    a->tick(clock::now() + std::chrono::seconds(6));
    ASSERT_TRUE(pump([&] { return a->state() == member_state::rejected; }));
    EXPECT_EQ(a->rejection(), notify_type::authorization_failed);
    EXPECT_EQ(a->membership(), nullptr);
}

TEST_F(gkm_recovery, RecoveryThatTimesOutIsRetriedAndSucceedsOnceTheGcksIsBack)
{
    gcks_config config = default_gcks_config();
    config.groups[0].tek_lifetime_seconds = 5;
    register_two(config, member("gm-a"));
    const uint16_t port = server->local().port;
    server.reset();  // the key server is down

    clock::time_point t = clock::now() + std::chrono::seconds(6);
    a->tick(t);  // TEK expired: recovery 1 starts, nobody answers
    ASSERT_EQ(a->counters().reregistrations, 1u);
    for (int i = 0; i < 120 && a->state() != member_state::timed_out; ++i) {
        t += std::chrono::seconds(1);
        a->tick(t);
    }
    ASSERT_EQ(a->state(), member_state::timed_out);
    ASSERT_NE(a->membership(), nullptr);  // still the keys it had
    a->tick(t + std::chrono::seconds(1));
    EXPECT_EQ(a->counters().reregistrations, 1u);  // not before recovery_retry

    config.listen.port = port;
    start_gcks(std::move(config));
    a->tick(t + member_config{}.recovery_retry);
    EXPECT_EQ(a->counters().reregistrations, 2u);
    ASSERT_TRUE(pump([&] { return a->state() == member_state::registered; }));
    EXPECT_EQ(a->membership()->teks[0].spi, server->status(7)->tek_spi);
}
