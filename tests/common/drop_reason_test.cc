#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/drop_reason.hh"

using namespace msecgw;

TEST(drop_reason, every_reason_has_a_unique_prometheus_safe_label)
{
    std::set<std::string> seen;
    for (const auto& row : drop_table) {
        std::string label(row.label);
        EXPECT_TRUE(seen.insert(label).second) << label << " twice";
        EXPECT_FALSE(row.help.empty()) << label;
        for (char c : label) {
            EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9')) << label;
        }
    }
    EXPECT_EQ(seen.size(), drop_reason_count);
}
