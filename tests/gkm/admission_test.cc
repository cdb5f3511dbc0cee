// Bounded GCKS state (RFC 7296 §2.6): half-open IKE SAs expire and are capped, and under a flood
// of IKE_SA_INIT the GCKS answers with stateless COOKIEs while a real member still registers.

#include <gtest/gtest.h>

#include "gkm/cookies.hh"
#include "gkm/ike_sa.hh"
#include "gkm/registration.hh"
#include "loopback_fixture.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace msecgw::gkm::test;

namespace {

/// Sends IKE_SA_INIT requests from one loopback socket, each with a fresh SPIi and nonce and no
/// COOKIE, the way a flooding initiator that never completes would.
class init_flooder {
public:
    init_flooder()
    {
        result<udp_socket> s = udp_socket::open(endpoint{0x7f000001, 0});
        EXPECT_TRUE(s.ok());
        _socket = std::make_unique<udp_socket>(std::move(*s));
        result<ecdh_key> key = ecdh_key::generate(dh_group::ecp256);
        EXPECT_TRUE(key.ok());
        _public = key->public_value();
    }

    void send(const endpoint& to, int n, const bytes& cookie = {})
    {
        for (int i = 0; i < n; ++i) {
            bytes spi = random_bytes(8);
            const message m = ike_sa_init_request(*wire_reader(spi).u64() | 1, dh_group::ecp256, _public,
                                                  random_bytes(our_nonce_size), cookie);
            _socket->send_to(to, encode_message(m));
        }
    }

    /// Discards whatever the GCKS answered (cookies, IKE_SA_INIT responses).
    size_t drain()
    {
        size_t n = 0;
        while (_socket->receive()) {
            ++n;
        }
        return n;
    }

private:
    std::unique_ptr<udp_socket> _socket;
    bytes _public;
};

gcks_config with_admission(size_t cookie_threshold, size_t max_half_open)
{
    gcks_config c = default_gcks_config();
    c.admission.cookie_threshold = cookie_threshold;
    c.admission.max_half_open = max_half_open;
    return c;
}

} // namespace

class gkm_admission : public gkm_loopback {
protected:
    /// n requests in bursts the socket buffer holds, the GCKS ticked after each; checks the bound
    /// after every burst.
    void flood(int n, size_t bound)
    {
        for (int sent = 0; sent < n; sent += 100) {
            flooder.send(server->local(), std::min(100, n - sent));
            server->tick(clock::now());
            ASSERT_LE(server->half_open_sessions(), bound);
            flooder.drain();
        }
    }

    init_flooder flooder;
};

TEST_F(gkm_admission, FloodKeepsHalfOpenBoundedAndARealMemberRegistersWithACookie)
{
    start_gcks(with_admission(32, 64));
    flood(3000, 32);
    EXPECT_EQ(server->half_open_sessions(), 32u);
    EXPECT_EQ(server->counters().ike_sa_init, 32u);  // no Diffie-Hellman beyond the threshold
    EXPECT_GT(server->counters().cookies_sent, 0u);
    EXPECT_EQ(server->counters().half_open_dropped, 0u);

    const uint64_t cookies_before = server->counters().cookies_sent;
    gkm::group_member& a = add_member(member("gm-a"));
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    EXPECT_EQ(server->counters().cookies_sent, cookies_before + 1);
    EXPECT_EQ(server->counters().registrations, 1u);
    EXPECT_EQ(server->half_open_sessions(), 32u);  // the member's own session finished
    EXPECT_EQ(server->counters().cookies_rejected, 0u);
}

TEST_F(gkm_admission, OneAddressCannotTakeTheWholeHalfOpenTable)
{
    gcks_config c = with_admission(SIZE_MAX, 100);
    c.admission.max_half_open_per_address = 10;
    start_gcks(std::move(c));
    flood(50, 10);  // the flooder's one address
    EXPECT_EQ(server->half_open_sessions(), 10u);
    EXPECT_EQ(server->counters().half_open_address_dropped, 40u);
    EXPECT_EQ(server->counters().half_open_dropped, 0u);
    member_config other = member("gm-a");
    other.local = endpoint{0x7f000002, 0};  // another address registers
    gkm::group_member& a = add_member(std::move(other));
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    EXPECT_EQ(server->half_open_sessions(), 10u);
}

TEST_F(gkm_admission, HalfOpenSessionsBeyondTheCapAreDropped)
{
    start_gcks(with_admission(SIZE_MAX, 50));  // cookies off: only the cap bounds the state
    flood(500, 50);
    EXPECT_EQ(server->half_open_sessions(), 50u);
    EXPECT_GT(server->counters().half_open_dropped, 0u);
    EXPECT_EQ(server->counters().cookies_sent, 0u);
}

TEST_F(gkm_admission, HalfOpenSessionsExpireAfterTheirTimeout)
{
    start_gcks(with_admission(SIZE_MAX, 1000));
    flood(100, 100);
    const size_t open = server->half_open_sessions();
    ASSERT_GT(open, 0u);
    server->tick(clock::now() + default_gcks_config().admission.half_open_timeout / 2);
    EXPECT_EQ(server->half_open_sessions(), open);
    server->tick(clock::now() + default_gcks_config().admission.half_open_timeout + std::chrono::seconds(1));
    EXPECT_EQ(server->half_open_sessions(), 0u);
    EXPECT_EQ(server->sessions(), 0u);
    EXPECT_EQ(server->counters().half_open_expired, open);
}

TEST_F(gkm_admission, FinishedSessionsAreKeptForRetransmissionsThenExpire)
{
    gkm::group_member& a = add_member(member("gm-a"));
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    EXPECT_EQ(server->half_open_sessions(), 0u);
    EXPECT_EQ(server->sessions(), 1u);
    server->tick(clock::now() + default_gcks_config().admission.finished_linger + std::chrono::seconds(1));
    EXPECT_EQ(server->sessions(), 0u);
    EXPECT_EQ(server->counters().sessions_expired, 1u);
}

TEST_F(gkm_admission, ACookieFromAnotherInitiatorIsRejected)
{
    start_gcks(with_admission(0, 64));  // every IKE_SA_INIT needs a cookie
    gkm::group_member& a = add_member(member("gm-a"));
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    EXPECT_EQ(server->counters().cookies_sent, 1u);
    // Cookies it never earned (made up, or bound to another SPIi and nonce) cost no state.
    bytes made_up(33, 0);
    flooder.send(server->local(), 1, made_up);
    made_up[0] = 1;  // the current secret's version
    flooder.send(server->local(), 1, made_up);
    server->tick(clock::now());
    EXPECT_EQ(server->counters().cookies_rejected, 2u);
    EXPECT_EQ(server->counters().ike_sa_init, 1u);
    EXPECT_EQ(server->half_open_sessions(), 0u);
}

TEST(GkmCookieJar, CookiesSurviveOneRotationNotTwoAndAreBoundToTheInitiator)
{
    cookie_jar jar;
    const clock::time_point t0 = clock::now();
    constexpr auto lifetime = std::chrono::seconds(60);
    jar.rotate_if_due(t0, lifetime);
    const bytes nonce = random_bytes(our_nonce_size);
    const endpoint peer{0x7f000001, 500};
    const bytes cookie = jar.make(nonce, peer, 42);
    ASSERT_EQ(cookie.size(), 33u);
    EXPECT_TRUE(jar.valid(cookie, nonce, peer, 42));
    EXPECT_FALSE(jar.valid(cookie, nonce, peer, 43));                      // another SPIi
    EXPECT_FALSE(jar.valid(cookie, nonce, endpoint{0x7f000002, 500}, 42));  // another address
    EXPECT_FALSE(jar.valid(cookie, random_bytes(our_nonce_size), peer, 42)); // another nonce

    jar.rotate_if_due(t0 + lifetime / 2, lifetime);  // not due
    EXPECT_EQ(jar.make(nonce, peer, 42), cookie);
    jar.rotate_if_due(t0 + lifetime, lifetime);
    EXPECT_NE(jar.make(nonce, peer, 42), cookie);
    EXPECT_TRUE(jar.valid(cookie, nonce, peer, 42));   // made under the previous secret
    jar.rotate_if_due(t0 + 2 * lifetime, lifetime);
    EXPECT_FALSE(jar.valid(cookie, nonce, peer, 42));  // two rotations old
}

TEST_F(gkm_admission, OneTickHandlesABoundedNumberOfDatagramsAndGarbageIsCounted)
{
    gcks_config c = with_admission(0, 64);  // a COOKIE for everyone: no state, no Diffie-Hellman
    c.admission.datagrams_per_tick = 16;
    start_gcks(std::move(c));
    flooder.send(server->local(), 40);
    server->tick(clock::now());
    EXPECT_EQ(server->counters().cookies_sent, 16u);  // the rest waits in the socket buffer
    server->tick(clock::now());
    server->tick(clock::now());
    EXPECT_EQ(server->counters().cookies_sent, 40u);

    // Garbage: bytes that do not decode are malformed; a well-formed response, or a request of an
    // exchange the key server does not serve, is ignored. Nothing is answered.
    result<udp_socket> s = udp_socket::open(endpoint{0x7f000001, 0});
    ASSERT_TRUE(s.ok());
    s->send_to(server->local(), bytes(3, 0xff));
    s->send_to(server->local(), random_bytes(300));
    message response = ike_sa_init_request(7, dh_group::ecp256, bytes(65, 4), random_bytes(our_nonce_size));
    response.header.flags = flag_response;
    s->send_to(server->local(), encode_message(response));
    message informational = ike_sa_init_request(8, dh_group::ecp256, bytes(65, 4), random_bytes(our_nonce_size));
    informational.header.exchange = exchange_type::informational;
    s->send_to(server->local(), encode_message(informational));
    server->tick(clock::now());
    EXPECT_EQ(server->counters().malformed, 2u);
    EXPECT_EQ(server->counters().ignored, 2u);
    EXPECT_FALSE(s->receive().has_value());
    EXPECT_EQ(server->sessions(), 0u);
}

TEST(GkmAdmission, ZeroDatagramsPerTickIsAConfigurationError)
{
    gcks_config c = with_admission(0, 64);
    c.admission.datagrams_per_tick = 0;
    result<std::unique_ptr<gcks>> g = gcks::create(std::move(c));
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.err().detail.find("datagrams_per_tick"), std::string::npos);
}

TEST_F(gkm_admission, RefusedRegistrationsLeaveNoSessionBehind)
{
    gkm::group_member& outsider = add_member(member("gm-outsider"));
    member_config wrong = member("gm-b");
    wrong.psk = psk_of("not the key");
    gkm::group_member& impostor = add_member(std::move(wrong));
    run_registrations();
    EXPECT_EQ(outsider.rejection(), notify_type::authorization_failed);
    EXPECT_EQ(impostor.rejection(), notify_type::authentication_failed);
    EXPECT_EQ(server->sessions(), 0u);
    EXPECT_EQ(server->half_open_sessions(), 0u);
    EXPECT_EQ(server->counters().refused_sessions_ended, 2u);
}
