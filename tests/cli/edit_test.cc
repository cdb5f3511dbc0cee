// The CLI's add sa / add policy on a boundary gateway (two protected ports in two key regions):
// the mini document the loader checks carries the running regions and the ports' regions, and
// `region=` puts the new SA or policy in a region other than the first.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/commands.hh"
#include "config/config.hh"

using namespace msecgw;

namespace {

const char* const key_leaf = "0x000102030405060708090a0b0c0d0e0f10111213"; // test keys
const char* const key_trunk = "0x202122232425262728292a2b2c2d2e2f30313233";

config::gateway_cfg boundary()
{
    const std::string text = std::string("regions: [leaf-a, trunk]\n"
                                         "ports:\n"
                                         "  - {port: 0, side: protected, region: leaf-a}\n"
                                         "  - {port: 1, side: protected, region: trunk}\n"
                                         "sas:\n"
                                         "  - {name: a-in, dir: in, spi: 0xa100, aead: aes-128-gcm, key: \"") +
                             key_leaf + "\", region: leaf-a}\n"
                                     "  - {name: t-out, dir: out, spi: 0x7100, aead: aes-128-gcm, key: \"" +
                             key_trunk + "\", region: trunk}\n"
                                     "policies:\n"
                                     "  - {dir: in, region: leaf-a, dst: 239.0.0.0/8, action: protect, sa: a-in}\n"
                                     "  - {dir: out, region: trunk, dst: 239.0.0.0/8, action: protect, sa: t-out}\n";
    auto c = config::load_string(text, "boundary.yaml");
    EXPECT_TRUE(c.ok()) << (c ? "" : c.err().detail);
    return c ? std::move(c.value()) : config::gateway_cfg{};
}

} // namespace

TEST(cli_edit, add_sa_and_policy_on_a_boundary_gateway_in_the_named_region)
{
    const config::gateway_cfg run = boundary();
    ASSERT_EQ(run.regions.size(), 2u);
    auto with_sa = cli::with_sa_added(run, {"name=t-out2", "dir=out", "spi=0x7101", "aead=aes-128-gcm",
                                            std::string("key=") + key_trunk, "region=trunk"});
    ASSERT_TRUE(with_sa.ok()) << with_sa.err().detail;
    const config::sa_cfg* sa = with_sa->find_sa("t-out2");
    ASSERT_NE(sa, nullptr);
    EXPECT_EQ(sa->region, 1) << "trunk";
    auto with_policy = cli::with_policy_added(*with_sa, {"at=1", "dir=out", "dst=239.2.0.0/16", "action=protect",
                                                         "sa=t-out2", "region=trunk"});
    ASSERT_TRUE(with_policy.ok()) << with_policy.err().detail;
    ASSERT_EQ(with_policy->policies.size(), 3u);
    EXPECT_EQ(with_policy->policies[1].sa, "t-out2");
    EXPECT_EQ(with_policy->policies[1].region, 1);
    // Without region= they go to the first region, as in the file.
    auto in_first = cli::with_sa_added(run, {"name=a-in2", "dir=in", "spi=0xa101", "aead=aes-128-gcm",
                                             std::string("key=") + key_leaf});
    ASSERT_TRUE(in_first.ok()) << in_first.err().detail;
    EXPECT_EQ(in_first->find_sa("a-in2")->region, 0);
    auto bypass = cli::with_policy_added(run, {"dir=in", "dst=224.0.0.0/24", "action=bypass"});
    ASSERT_TRUE(bypass.ok()) << bypass.err().detail;
    EXPECT_EQ(bypass->policies.back().region, 0);
}

TEST(cli_edit, region_errors_name_the_field_and_no_key)
{
    const config::gateway_cfg run = boundary();
    auto wrong_region = cli::with_policy_added(run, {"dir=out", "dst=239.2.0.0/16", "action=protect", "sa=t-out"});
    ASSERT_FALSE(wrong_region.ok());
    EXPECT_EQ(wrong_region.err().detail.rfind("add policy: sa: ", 0), 0u) << wrong_region.err().detail;
    EXPECT_NE(wrong_region.err().detail.find("region 'trunk'"), std::string::npos) << wrong_region.err().detail;
    auto unknown = cli::with_sa_added(run, {"name=x", "dir=in", "spi=0xa102", "aead=aes-128-gcm",
                                            std::string("key=") + key_leaf, "region=sky"});
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.err().detail.rfind("add sa: region: ", 0), 0u) << unknown.err().detail;
    EXPECT_NE(unknown.err().detail.find("'sky'"), std::string::npos) << unknown.err().detail;
    EXPECT_EQ(unknown.err().detail.find("0405060708"), std::string::npos) << "key material in " << unknown.err().detail;
}
