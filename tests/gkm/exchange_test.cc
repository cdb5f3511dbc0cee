// GCKS and GMs over real UDP sockets on 127.0.0.1: IKE_SA_INIT + GSA_AUTH with PSK, TEK and
// Sender-ID delivery, rejections, retransmission with backoff and timeout (RFC 7296 §2.1).

#include <gtest/gtest.h>

#include "gkm/ike_sa.hh"
#include "gkm/registration.hh"
#include "loopback_fixture.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace msecgw::gkm::test;

TEST_F(gkm_loopback, TwoMembersGetTheSameTekAndDistinctSenderIds)
{
    gkm::group_member& a = add_member(member("gm-a"));
    member_config cb = member("gm-b");
    cb.group = dh_group::curve25519;
    gkm::group_member& b = add_member(std::move(cb));
    run_registrations();

    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    ASSERT_EQ(b.state(), member_state::registered) << b.last_error();
    const group_membership* ma = a.membership();
    const group_membership* mb = b.membership();
    ASSERT_NE(ma, nullptr);
    ASSERT_NE(mb, nullptr);
    ASSERT_EQ(ma->teks.size(), 1u);
    ASSERT_EQ(mb->teks.size(), 1u);
    const tek& ta = ma->teks[0];
    const tek& tb = mb->teks[0];
    EXPECT_EQ(ta.spi, tb.spi);
    EXPECT_GE(ta.spi, 256u);
    EXPECT_EQ(ta.key_bits, 256);
    EXPECT_EQ(ta.key.size(), 32u);
    EXPECT_EQ(ta.salt.size(), 4u);
    EXPECT_TRUE(equal_constant_time(ta.key.view(), tb.key.view()));
    EXPECT_TRUE(equal_constant_time(ta.salt.view(), tb.salt.view()));
    EXPECT_EQ(to_hex(ta.destination.start_address), "ef010101");
    EXPECT_EQ(ta.lifetime_seconds, 3600u);

    ASSERT_TRUE(ma->sender_id.has_value());
    ASSERT_TRUE(mb->sender_id.has_value());
    EXPECT_NE(*ma->sender_id, *mb->sender_id);
    EXPECT_NE(*ma->sender_id, 0u);
    EXPECT_EQ(ma->sender_id_bits, 16);
    EXPECT_EQ(server->counters().registrations, 2u);
    EXPECT_EQ(server->counters().malformed, 0u);
}

TEST_F(gkm_loopback, ReceiverOnlyMemberGetsTheTekButNoSenderId)
{
    member_config c = member("gm-a");
    c.sender = false;
    gkm::group_member& a = add_member(std::move(c));
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    EXPECT_FALSE(a.membership()->sender_id.has_value());
    EXPECT_EQ(a.membership()->teks.size(), 1u);
}

TEST_F(gkm_loopback, UnauthorisedMemberGetsAuthorizationFailedAndNoKey)
{
    gkm::group_member& outsider = add_member(member("gm-outsider"));
    gkm::group_member& insider = add_member(member("gm-a"));
    run_registrations();
    EXPECT_EQ(outsider.state(), member_state::rejected);
    EXPECT_EQ(outsider.rejection(), notify_type::authorization_failed);
    EXPECT_EQ(outsider.membership(), nullptr);
    EXPECT_EQ(insider.state(), member_state::registered) << insider.last_error();
    EXPECT_EQ(server->counters().authorization_failed, 1u);
    EXPECT_EQ(server->counters().registrations, 1u);
}

TEST_F(gkm_loopback, WrongPreSharedKeyGetsAuthenticationFailed)
{
    member_config c = member("gm-a");
    c.psk = psk_of("not the key");
    gkm::group_member& a = add_member(std::move(c));
    member_config unknown = member("gm-nobody");
    gkm::group_member& n = add_member(std::move(unknown));
    run_registrations();
    EXPECT_EQ(a.state(), member_state::rejected);
    EXPECT_EQ(a.rejection(), notify_type::authentication_failed);
    EXPECT_EQ(n.rejection(), notify_type::authentication_failed);
    EXPECT_EQ(a.membership(), nullptr);
    EXPECT_EQ(server->counters().authentication_failed, 2u);
}

TEST_F(gkm_loopback, UnknownGroupGetsInvalidGroupId)
{
    member_config c = member("gm-a");
    c.group_id = 99;
    gkm::group_member& a = add_member(std::move(c));
    run_registrations();
    EXPECT_EQ(a.rejection(), notify_type::invalid_group_id);
    EXPECT_EQ(a.membership(), nullptr);
}

TEST_F(gkm_loopback, MemberCanRegisterAgain)
{
    gkm::group_member& a = add_member(member("gm-a"));
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered);
    const uint32_t first_sender_id = *a.membership()->sender_id;
    a.start(clock::now());
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    EXPECT_NE(*a.membership()->sender_id, first_sender_id);  // a Sender-ID is never handed out twice
}

TEST(GkmRetransmit, BackoffDoublesThenTimesOut)
{
    // A bound socket nobody reads: every request is lost. Time is virtual: tick() is given it.
    result<udp_socket> sink = udp_socket::open(endpoint{0x7f000001, 0});
    ASSERT_TRUE(sink.ok());
    member_config c;
    c.gcks = sink->local();
    c.identity = "gm-a";
    c.psk = psk_of("gm-a");
    c.retransmit = retransmit_policy{std::chrono::milliseconds(500), 4};
    result<std::unique_ptr<gkm::group_member>> m = group_member::create(std::move(c));
    ASSERT_TRUE(m.ok());
    gkm::group_member& gm = **m;
    const clock::time_point t0{};
    gm.start(t0);
    EXPECT_EQ(gm.transmissions(), 1u);
    using std::chrono::milliseconds;
    const std::pair<milliseconds, uint64_t> schedule[] = {
        {milliseconds(499), 1}, {milliseconds(500), 2},    // first retransmission after 0.5 s
        {milliseconds(1499), 2}, {milliseconds(1500), 3},  // then 1 s later
        {milliseconds(3499), 3}, {milliseconds(3500), 4},  // then 2 s later
    };
    for (const auto& [at, expected] : schedule) {
        gm.tick(t0 + at);
        EXPECT_EQ(gm.transmissions(), expected) << "at " << at.count() << " ms";
        EXPECT_EQ(gm.state(), member_state::ike_sa_init_sent);
    }
    gm.tick(t0 + milliseconds(7500));  // 4 s after the 4th: give up
    EXPECT_EQ(gm.state(), member_state::timed_out);
    EXPECT_EQ(gm.transmissions(), 4u);
    gm.tick(t0 + milliseconds(60000));
    EXPECT_EQ(gm.transmissions(), 4u);
}

TEST_F(gkm_loopback, RetransmittedRequestGetsTheCachedResponse)
{
    // A hand-made initiator sends the same IKE_SA_INIT twice: the GCKS answers both with the
    // same bytes and creates one IKE SA.
    result<udp_socket> peer = udp_socket::open(endpoint{0x7f000001, 0});
    ASSERT_TRUE(peer.ok());
    result<ecdh_key> dh = ecdh_key::generate(dh_group::ecp256);
    ASSERT_TRUE(dh.ok());
    message init{ike_header{0x0102030405060708ull, 0, payload_type::none, ike_version_2, exchange_type::ike_sa_init,
                            flag_initiator, 0, 0},
                 {payload{payload_type::sa, false, sa_payload{{make_ike_proposal(dh_group::ecp256)}}},
                  payload{payload_type::ke, false, ke_payload{19, dh->public_value()}},
                  payload{payload_type::nonce, false, nonce_payload{random_bytes(32)}}}};
    const bytes wire = encode_message(init);
    std::vector<bytes> answers;
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(peer->send_to(server->local(), wire));
        for (int round = 0; round < 200 && answers.size() <= size_t(i); ++round) {
            pollfd fd{server->fd(), POLLIN, 0};
            ::poll(&fd, 1, 10);
            server->tick(clock::now());
            if (auto dg = peer->receive()) {
                answers.push_back(dg->data);
            }
        }
    }
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_EQ(to_hex(answers[0]), to_hex(answers[1]));
    EXPECT_EQ(server->counters().ike_sa_init, 1u);
    EXPECT_EQ(server->counters().retransmissions_answered, 1u);
    result<message> answer = decode_message(answers[0]);
    ASSERT_TRUE(answer.ok());
    EXPECT_TRUE(answer->header.is_response());
    EXPECT_NE(answer->header.spi_r, 0u);
}

TEST_F(gkm_loopback, GarbageIsCountedAndIgnored)
{
    result<udp_socket> peer = udp_socket::open(endpoint{0x7f000001, 0});
    ASSERT_TRUE(peer.ok());
    const bytes junk = from_hex("0102030405060708");
    ASSERT_TRUE(peer->send_to(server->local(), junk));
    for (int round = 0; round < 200 && server->counters().malformed == 0; ++round) {
        pollfd fd{server->fd(), POLLIN, 0};
        ::poll(&fd, 1, 10);
        server->tick(clock::now());
    }
    EXPECT_EQ(server->counters().malformed, 1u);
    gkm::group_member& a = add_member(member("gm-a"));
    run_registrations();
    EXPECT_EQ(a.state(), member_state::registered);
}

TEST(GkmConfig, BadGroupConfigIsRefused)
{
    gcks_config c = default_gcks_config();
    c.groups[0].destination.end_address = from_hex("ef01");
    EXPECT_FALSE(gcks::create(c).ok());
    c = default_gcks_config();
    c.groups[0].tek_key_bits = 192;
    EXPECT_FALSE(gcks::create(c).ok());
    c = default_gcks_config();
    c.groups[0].sender_id_bits = 0;
    EXPECT_FALSE(gcks::create(c).ok());
}
