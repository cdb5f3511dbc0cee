#pragma once
// Shared checks of the config tests: a text that must load, and a text that must fail with one
// line "c.yaml:LINE: KEY: ..." that never contains any of the given key-material strings.

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "config/config.hh"

namespace msecgw::config::test {

inline void expect_config_error(const std::string& yaml, errc code, int line, const std::string& key,
                                const std::string& word, std::initializer_list<const char*> secrets)
{
    auto r = load_string(yaml, "c.yaml");
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_EQ(r.err().code, code) << r.err().detail;
    const std::string prefix = "c.yaml:" + std::to_string(line) + ": " + key + ": ";
    EXPECT_EQ(r.err().detail.rfind(prefix, 0), 0u) << "want prefix '" << prefix << "' in '" << r.err().detail << "'";
    EXPECT_EQ(r.err().detail.find('\n'), std::string::npos) << r.err().detail;
    if (!word.empty()) {
        EXPECT_NE(r.err().detail.find(word), std::string::npos) << "want '" << word << "' in " << r.err().detail;
    }
    for (const char* secret : secrets) {
        EXPECT_EQ(r.err().detail.find(secret), std::string::npos) << "key material leaked: " << r.err().detail;
    }
}

inline gateway_cfg load_ok(const std::string& yaml)
{
    auto r = load_string(yaml, "c.yaml");
    EXPECT_TRUE(r.ok()) << r.err().detail << "\n" << yaml;
    return r.ok() ? std::move(r.value()) : gateway_cfg{};
}

} // namespace msecgw::config::test
