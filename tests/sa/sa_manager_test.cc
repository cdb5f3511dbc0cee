// Sender-IDs across SIGHUP-style re-applies of the configuration (lib/control/sa_manager): a new
// Sender-ID is a new SA object with its own IV counters; a Sender-ID that comes back continues
// its counters; a key whose counters are stored under another Sender-ID width is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "config/config.hh"
#include "control/sa_manager.hh"

#include "../common/temp_dir.hh"

using namespace msecgw;

namespace {

constexpr uint64_t block = 1000; // counters per IV reservation

/// One outbound SA `s-out` (SPI 0x7001, one key) with the given Sender-ID lines, protected by one policy.
std::string yaml(const std::string& dir, const std::string& sender, const std::string& more_sas = "")
{
    return "state_dir: " + dir + "\n"
           "ports: [{port: 0, side: clear}, {port: 1, side: protected}]\n"
           "sas:\n"
           "  - {name: s-out, dir: out, spi: 0x7001, aead: aes-128-gcm,\n"
           "     key: \"0xfeffe9928665731c6d6a8f9467308308cafebabe\"" + sender + "}\n" + more_sas +
           "policies:\n"
           "  - {dir: out, dst: 239.7.0.0/16, action: protect, sa: s-out}\n";
}

std::string sid(uint32_t id, unsigned bits)
{
    return ", sender_id_bits: " + std::to_string(bits) + ", sender_id: " + std::to_string(id);
}

class sa_manager_sender_id : public ::testing::Test {
protected:
    void SetUp() override { restart(); }
    /// A new manager on the same state_dir, as after a restart of the gateway.
    void restart()
    {
        mgr.reset(); // closes (unlocks) its IV stores first
        auto m = control::sa_manager::create(dir, 2, block);
        ASSERT_TRUE(m.ok()) << m.err().detail;
        mgr = std::move(m.value());
    }

    result<void> apply(const std::string& text)
    {
        auto cfg = config::load_string(text, "c.yaml");
        EXPECT_TRUE(cfg.ok()) << cfg.err().detail;
        return cfg.ok() ? mgr->apply(cfg.value()) : result<void>(cfg.err());
    }
    const sa::out_sa& out(size_t i = 0) const { return *mgr->current().out_sas.at(i); }
    size_t stores() const
    {
        size_t n = 0;
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            n += e.path().extension() == ".store";
        }
        return n;
    }

    test::temp_dir state_dir{"sa-manager-test"}; // declared first: removed after the manager is gone
    const std::string& dir = state_dir.path();
    std::unique_ptr<control::sa_manager> mgr;
};

} // namespace

TEST_F(sa_manager_sender_id, same_configuration_keeps_the_sa_object)
{
    ASSERT_TRUE(apply(yaml(dir, sid(1, 8)))) << "first apply";
    const sa::out_sa* first = &out();
    EXPECT_EQ(first->iv_prefix, uint64_t{1} << 56);
    EXPECT_EQ(first->counter_bits, 64 - 8 - 6);
    ASSERT_TRUE(apply(yaml(dir, sid(1, 8))));
    EXPECT_EQ(&out(), first) << "unchanged SA must keep its object and counters";
}

TEST_F(sa_manager_sender_id, another_sender_id_is_a_new_sa_with_its_own_counters)
{
    ASSERT_TRUE(apply(yaml(dir, sid(1, 8))));
    const uint32_t uid1 = out().uid;
    EXPECT_EQ(out().lanes[0].ctr, 0u);
    ASSERT_TRUE(apply(yaml(dir, sid(2, 8)))); // same name, SPI and key
    EXPECT_NE(out().uid, uid1) << "a new Sender-ID must be a new SA object";
    EXPECT_EQ(out().iv_prefix, uint64_t{2} << 56);
    // Sender-ID 2 has its own IV space, but its counters (sequence number = counter + 1) start
    // after the highest one Sender-ID 1 reserved (its current and next block): receivers keep one
    // replay window per (SA, source), so a gateway re-registered under a new Sender-ID on the same
    // key must not begin again at sequence number 1.
    EXPECT_EQ(out().lanes[0].ctr, 2 * block);
    EXPECT_EQ(stores(), 2u);
    ASSERT_TRUE(apply(yaml(dir, sid(1, 8)))); // back to Sender-ID 1: after Sender-ID 2's blocks
    EXPECT_EQ(out().iv_prefix, uint64_t{1} << 56);
    EXPECT_EQ(out().lanes[0].ctr, 4 * block) << "Sender-ID 1's counters go on above every sequence number sent";
    EXPECT_EQ(out().lanes[1].ctr, 4 * block);
    EXPECT_EQ(stores(), 2u);
}

TEST_F(sa_manager_sender_id, no_sender_id_keeps_the_store_name_of_before)
{
    ASSERT_TRUE(apply(yaml(dir, "")));
    EXPECT_EQ(out().iv_prefix, 0u);
    ASSERT_EQ(stores(), 1u);
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() == ".store") {
            EXPECT_EQ(name.size(), std::string("iv-key-").size() + 24 + std::string(".store").size()) << name;
            EXPECT_EQ(name.find("sid"), std::string::npos) << name;
        }
    }
}

TEST_F(sa_manager_sender_id, another_width_for_the_same_key_is_refused)
{
    ASSERT_TRUE(apply(yaml(dir, sid(3, 8))));
    const sa::out_sa* running = &out();
    for (const std::string& other : {sid(3, 12), std::string(""), std::string(", sender_id_bits: 0"), sid(0, 16)}) {
        auto r = apply(yaml(dir, other));
        ASSERT_FALSE(r.ok()) << "width change accepted: " << other;
        EXPECT_NE(r.err().detail.find("Sender-ID width 8"), std::string::npos) << r.err().detail;
        EXPECT_NE(r.err().detail.find("-sid8-3.store"), std::string::npos) << r.err().detail;
        EXPECT_EQ(&out(), running) << "a refused apply must change nothing";
        EXPECT_EQ(stores(), 1u);
    }
    // After a restart too: the store on disk is what counts.
    restart();
    EXPECT_FALSE(apply(yaml(dir, "")).ok());
    ASSERT_TRUE(apply(yaml(dir, sid(3, 8))));
    EXPECT_EQ(out().lanes[0].ctr, 2 * block) << "restart continues Sender-ID 3's counters";
}

TEST_F(sa_manager_sender_id, two_sender_ids_of_one_key_side_by_side)
{
    const std::string second = "  - {name: s-out2, dir: out, spi: 0x7002, aead: aes-128-gcm,\n"
                               "     key: \"0xfeffe9928665731c6d6a8f9467308308cafebabe\"" + sid(9, 8) + "}\n";
    ASSERT_TRUE(apply(yaml(dir, sid(8, 8), second)));
    ASSERT_EQ(mgr->current().out_sas.size(), 2u);
    EXPECT_EQ(out(0).iv_prefix, uint64_t{8} << 56);
    EXPECT_EQ(out(1).iv_prefix, uint64_t{9} << 56);
    EXPECT_EQ(stores(), 2u);
    // The same key and Sender-ID twice would be the same IVs: the second SA cannot get the store.
    const std::string same = "  - {name: s-out2, dir: out, spi: 0x7002, aead: aes-128-gcm,\n"
                             "     key: \"0xfeffe9928665731c6d6a8f9467308308cafebabe\"" + sid(8, 8) + "}\n";
    EXPECT_FALSE(apply(yaml(dir, sid(8, 8), same)).ok());
}
