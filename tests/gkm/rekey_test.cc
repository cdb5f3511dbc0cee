// GSA_REKEY: signed by the GCKS, encrypted under the KEK, Message IDs strictly increasing;
// members install the new TEK, keep the previous ones for overlap, and drop (and count) replayed,
// out-of-order and forged rekeys.

#include <gtest/gtest.h>

#include "common/byte_order.hh"
#include "loopback_fixture.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace msecgw::gkm::test;

namespace {

constexpr uint8_t gsa_rekey_exchange = 41;

} // namespace

class gkm_rekey : public gkm_loopback {
protected:
    void SetUp() override
    {
        observer = [this](datagram_direction d, const endpoint&, const endpoint&, byte_view data) {
            if (d == datagram_direction::sent && data.size() > 18 && data[18] == gsa_rekey_exchange) {
                rekeys_on_wire.emplace_back(data.begin(), data.end());
            }
        };
        gkm_loopback::SetUp();
        // gm-a pins the GCKS's rekey key from configuration; gm-b learns it from the AUTH_KEY
        // attribute of its registration (RFC 9838 §4.5.3.2).
        member_config a = member("gm-a");
        a.gcks_public_key = server->rekey_public_key();
        add_member(std::move(a));
        add_member(member("gm-b"));
        run_registrations();
        ASSERT_EQ(members[0]->state(), member_state::registered);
        ASSERT_EQ(members[1]->state(), member_state::registered);
        ASSERT_TRUE(injector_socket());
    }

    bool injector_socket()
    {
        result<udp_socket> s = udp_socket::open(endpoint{0x7f000001, 0});
        if (s.ok()) {
            injector = std::make_unique<udp_socket>(std::move(*s));
        }
        return s.ok();
    }

    /// Ticks members until pred holds (bounded number of poll rounds).
    template <class Pred>
    bool pump(Pred pred)
    {
        for (int round = 0; round < 200; ++round) {
            if (pred()) {
                return true;
            }
            std::vector<pollfd> fds;
            for (auto& m : members) {
                fds.push_back({m->fd(), POLLIN, 0});
            }
            ::poll(fds.data(), fds.size(), 10);
            for (auto& m : members) {
                m->tick(clock::now());
            }
        }
        return pred();
    }

    uint64_t total(uint64_t member_counters::*field) const
    {
        uint64_t sum = 0;
        for (const auto& m : members) {
            sum += m->counters().*field;
        }
        return sum;
    }

    void inject(const bytes& datagram)
    {
        for (const auto& m : members) {
            ASSERT_TRUE(injector->send_to(m->local(), datagram));
        }
    }

    std::vector<bytes> rekeys_on_wire;
    std::unique_ptr<udp_socket> injector;
};

TEST_F(gkm_rekey, EveryMemberInstallsTheNewTekAndKeepsThePrevious)
{
    const uint32_t old_spi = members[0]->membership()->teks[0].spi;
    ASSERT_TRUE(server->rekey(7).ok());
    EXPECT_EQ(server->counters().rekeys_sent, 2u);
    ASSERT_TRUE(pump([&] { return total(&member_counters::rekeys_accepted) == 2; }));
    const group_membership* a = members[0]->membership();
    const group_membership* b = members[1]->membership();
    ASSERT_EQ(a->teks.size(), 2u);
    ASSERT_EQ(b->teks.size(), 2u);
    EXPECT_NE(a->teks[0].spi, old_spi);
    EXPECT_EQ(a->teks[0].spi, b->teks[0].spi);
    EXPECT_TRUE(equal_constant_time(a->teks[0].key.view(), b->teks[0].key.view()));
    EXPECT_FALSE(equal_constant_time(a->teks[0].key.view(), a->teks[1].key.view()));
    EXPECT_EQ(a->teks[1].spi, old_spi);
    EXPECT_TRUE(a->sender_id.has_value());  // Sender-IDs survive a TEK rekey

    // Two older TEKs are held (a member that applies two rekeys at once still has the one it
    // sent under), never more.
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return total(&member_counters::rekeys_accepted) == 4; }));
    EXPECT_EQ(members[0]->membership()->teks.size(), 3u);
    EXPECT_EQ(members[0]->membership()->teks[2].spi, old_spi);
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return total(&member_counters::rekeys_accepted) == 6; }));
    EXPECT_EQ(members[0]->membership()->teks.size(), 3u);
    EXPECT_EQ(total(&member_counters::rekeys_forged), 0u);
    EXPECT_EQ(total(&member_counters::rekeys_replayed), 0u);
}

TEST_F(gkm_rekey, ReplayedAndOutOfOrderRekeysAreDroppedAndCounted)
{
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return total(&member_counters::rekeys_accepted) == 4; }));
    ASSERT_EQ(rekeys_on_wire.size(), 4u);
    const uint32_t current = members[0]->membership()->teks[0].spi;

    inject(rekeys_on_wire[3]);  // the latest again: a replay
    inject(rekeys_on_wire[0]);  // the first: out of order
    ASSERT_TRUE(pump([&] { return total(&member_counters::rekeys_replayed) == 4; }));
    EXPECT_EQ(members[0]->membership()->teks[0].spi, current);
    EXPECT_EQ(total(&member_counters::rekeys_accepted), 4u);
}

TEST_F(gkm_rekey, ForgedRekeysAreDroppedAndCounted)
{
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return total(&member_counters::rekeys_accepted) == 2; }));
    const uint32_t current = members[0]->membership()->teks[0].spi;
    const bytes genuine = rekeys_on_wire[0];

    bytes flipped = genuine;
    flipped[flipped.size() - 20] ^= 0x01;  // ciphertext
    store_be32(&flipped[20], load_be32(&flipped[20]) + 1);  // and a fresh Message ID
    bytes bumped = genuine;
    store_be32(&bumped[20], 1000);  // Message ID is in the AAD: the ICV fails
    bytes wrong_spi = genuine;
    wrong_spi[0] ^= 0xff;
    for (const bytes& forged : {flipped, bumped, wrong_spi}) {
        inject(forged);
    }
    ASSERT_TRUE(pump([&] { return total(&member_counters::rekeys_forged) == 6; }));
    EXPECT_EQ(members[0]->membership()->teks[0].spi, current);
    EXPECT_EQ(total(&member_counters::rekeys_accepted), 2u);

    // A genuine rekey still gets through after the forgeries.
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return total(&member_counters::rekeys_accepted) == 4; }));
}

TEST_F(gkm_rekey, AMemberPinnedToAnotherKeyRefusesTheRegistration)
{
    // A third member trusts some other key: the AUTH_KEY of the GCKS's answer does not match it,
    // so it takes no keys at all (rather than keys whose rekeys it could never verify).
    member_config c = member("gm-a");
    result<signing_key> other = signing_key::generate();
    ASSERT_TRUE(other.ok());
    c.gcks_public_key = other->public_key_der();
    gkm::group_member& doubter = add_member(std::move(c));
    run_registrations();
    EXPECT_EQ(doubter.state(), member_state::failed);
    EXPECT_EQ(doubter.membership(), nullptr);
    EXPECT_NE(doubter.last_error().find("AUTH_KEY"), std::string::npos) << doubter.last_error();
}

TEST_F(gkm_loopback, PeriodicRekeyReachesEveryMemberOncePerPeriod)
{
    gcks_config c = default_gcks_config();
    c.groups[0].rekey_period_seconds = 10;
    start_gcks(std::move(c));
    for (const char* id : {"gm-a", "gm-b"}) {
        member_config m = member(id);
        m.gcks_public_key = server->rekey_public_key();
        add_member(std::move(m));
    }
    run_registrations();  // the first tick starts the period
    ASSERT_EQ(members[0]->state(), member_state::registered);
    const uint32_t first = server->status(7)->tek_spi;
    const clock::time_point start = clock::now();

    server->tick(start + std::chrono::seconds(5));
    EXPECT_EQ(server->counters().periodic_rekeys, 0u);
    EXPECT_EQ(server->status(7)->tek_spi, first);
    server->tick(start + std::chrono::seconds(11));
    EXPECT_EQ(server->counters().periodic_rekeys, 1u);
    EXPECT_NE(server->status(7)->tek_spi, first);
    ASSERT_TRUE(pump([&] {
        return members[0]->counters().rekeys_accepted == 1 && members[1]->counters().rekeys_accepted == 1;
    }));
    EXPECT_EQ(members[0]->membership()->teks[0].spi, server->status(7)->tek_spi);
    server->tick(start + std::chrono::seconds(15));  // the period restarted at the rekey
    EXPECT_EQ(server->counters().periodic_rekeys, 1u);
    server->tick(start + std::chrono::seconds(22));
    EXPECT_EQ(server->counters().periodic_rekeys, 2u);
    EXPECT_EQ(server->counters().rekeys_failed, 0u);
}
