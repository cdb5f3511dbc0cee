// The TEK a gateway seals under while a rekey spreads (key_manager over the real GCKS and
// members on 127.0.0.1): a member that registers just after a rekey, and a member that applies
// two rekeys at once, keep sending under a TEK every other member still opens until the newest
// one is active. Time is passed to tick(), so the activation delay is stepped over, not waited.

#include <poll.h>
#include <sys/socket.h>

#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "config/config.hh"
#include "control/key_manager.hh"
#include "../common/free_port.hh"

using namespace msecgw;
using clock_type = control::key_manager::clock;

namespace {

constexpr auto activation = std::chrono::milliseconds(500);

/// Gateway A: the key server and a member (identity a); B: a member (identity b) of A's key
/// server at `port`. Both send (Sender-IDs) and open the group.
std::string config_text(bool key_server, uint16_t port, uint32_t overlap_ms)
{
    std::string y = "ports:\n  - {port: 0, side: clear}\n  - {port: 1, side: protected}\n"
                    "groups:\n  - {name: g, id: 5, dst: 239.1.0.0/16, members: [a, b], senders: [a, b],"
                    " tek_lifetime_seconds: 3600, registration_overlap_ms: " +
                    std::to_string(overlap_ms) + "}\n";
    const char* psk_a = "0x612d6f7665726c61702d746573742d70736b";  // "a-overlap-test-psk": test only
    const char* psk_b = "0x622d6f7665726c61702d746573742d70736b";
    if (key_server) {
        y += "key_server:\n  listen: 127.0.0.1:" + std::to_string(port) + std::string("\n  peers:\n    - {identity: a, psk: \"") + psk_a +
             "\"}\n    - {identity: b, psk: \"" + psk_b + "\"}\n";
    }
    y += std::string("member:\n  identity: ") + (key_server ? "a" : "b") + "\n  psk: \"" + (key_server ? psk_a : psk_b) +
         "\"\n  key_server: 127.0.0.1:" + std::to_string(port) +
         "\n  activation_delay_ms: 500\n  deactivation_delay_ms: 5000\n"
         "policies:\n  - {dir: out, dst: 239.1.0.0/16, action: protect, group: g}\n"
         "  - {dir: in, dst: 239.1.0.0/16, action: protect, group: g}\n";
    return y;
}

std::unique_ptr<control::key_manager> make(const std::string& text)
{
    auto cfg = config::load_string(text, "key_overlap_test");
    EXPECT_TRUE(cfg.ok()) << (cfg ? "" : cfg.err().detail);
    if (!cfg) {
        return nullptr;
    }
    auto km = control::key_manager::create(*cfg, true, clock_type::now());
    EXPECT_TRUE(km.ok()) << (km ? "" : km.err().detail);
    return km ? std::move(*km) : nullptr;
}

control::member_status status(const control::key_manager& km) { return km.members().at(0); }

class key_overlap : public ::testing::Test {
protected:
    void start(uint32_t overlap_ms)
    {
        port = test::free_loopback_port(SOCK_DGRAM); // A's member must name its own key server
        a = make(config_text(true, port, overlap_ms));
        ASSERT_TRUE(a && a->key_server());
        ASSERT_TRUE(tick_until({a.get()}, [&] { return status(*a).out_spi.has_value(); }));
    }

    void start_b(uint32_t overlap_ms)
    {
        b = make(config_text(false, port, overlap_ms));
        ASSERT_TRUE(b);
        ASSERT_TRUE(tick_until({a.get(), b.get()}, [&] { return status(*b).out_spi.has_value(); }));
    }

    /// Ticks the given gateways at the real time until pred holds (bounded rounds, no timing).
    static bool tick_until(std::vector<control::key_manager*> gws, const std::function<bool()>& pred)
    {
        for (int round = 0; round < 2000 && !pred(); ++round) {
            ::poll(nullptr, 0, 2);
            for (auto* g : gws) {
                g->tick(clock_type::now());
            }
        }
        return pred();
    }

    std::unique_ptr<control::key_manager> a;
    std::unique_ptr<control::key_manager> b;
    uint16_t port = 0;
};

} // namespace

TEST_F(key_overlap, ARegistrantJustAfterARekeySendsUnderThePreviousTekUntilTheNewOneIsActive)
{
    start(60'000);
    const uint32_t old_spi = *status(*a).out_spi;
    ASSERT_TRUE(a->rekey("g").ok());
    ASSERT_TRUE(tick_until({a.get()}, [&] { return status(*a).in_spis.size() == 2; }));
    const uint32_t new_spi = status(*a).in_spis.front();
    ASSERT_NE(new_spi, old_spi);
    EXPECT_EQ(*status(*a).out_spi, old_spi) << "A itself waits for its activation delay";

    start_b(60'000);
    EXPECT_EQ(a->key_server()->counters().registrations_with_previous_tek, 1u);
    control::member_status sb = status(*b);
    EXPECT_EQ(sb.in_spis, (std::vector<uint32_t>{new_spi, old_spi}));
    EXPECT_EQ(*sb.out_spi, old_spi) << "B would seal under a TEK other members may not have yet";

    b->tick(clock_type::now() + activation + std::chrono::milliseconds(50));
    EXPECT_EQ(*status(*b).out_spi, new_spi);
    EXPECT_EQ(status(*b).in_spis, (std::vector<uint32_t>{new_spi, old_spi})) << "old TEK kept for the deactivation delay";
}

TEST_F(key_overlap, WithoutOverlapARegistrantGetsTheCurrentTekOnly)
{
    start(0);
    ASSERT_TRUE(a->rekey("g").ok());
    ASSERT_TRUE(tick_until({a.get()}, [&] { return status(*a).in_spis.size() == 2; }));
    const uint32_t new_spi = status(*a).in_spis.front();
    start_b(0);
    EXPECT_EQ(a->key_server()->counters().registrations_with_previous_tek, 0u);
    EXPECT_EQ(status(*b).in_spis, (std::vector<uint32_t>{new_spi}));
    EXPECT_EQ(*status(*b).out_spi, new_spi);
}

TEST_F(key_overlap, AMemberThatMissedTwoRekeysKeepsSendingUnderTheTekOthersOpen)
{
    start(0);
    start_b(0);
    const uint32_t first = *status(*b).out_spi;
    // B's control loop stalls (not ticked) while the key server rekeys twice.
    ASSERT_TRUE(a->rekey("g").ok());
    ASSERT_TRUE(tick_until({a.get()}, [&] { return status(*a).in_spis.size() == 2; }));
    ASSERT_TRUE(a->rekey("g").ok());
    ASSERT_TRUE(tick_until({a.get()}, [&] { return status(*a).in_spis.size() == 3; }));
    const uint32_t newest = status(*a).in_spis.front();
    ASSERT_TRUE(tick_until({b.get()}, [&] { return status(*b).in_spis.size() == 3; }));
    EXPECT_EQ(status(*b).in_spis, status(*a).in_spis);
    EXPECT_EQ(*status(*b).out_spi, first) << "B must not seal under the intermediate TEK";
    b->tick(clock_type::now() + activation + std::chrono::milliseconds(50));
    EXPECT_EQ(*status(*b).out_spi, newest);
    EXPECT_EQ(status(*b).counters.rekeys_accepted, 2u);
}
