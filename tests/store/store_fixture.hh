#pragma once
/// Shared fixture for the iv_store tests: a fresh directory under /tmp per test, removed after it.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "store/store.hh"

namespace msecgw::store::test {

inline constexpr uint64_t mib = uint64_t{1} << 20;

inline std::string hex8(uint32_t v)
{
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", v);
    return buf;
}

/// `body` followed by its correct checksum line.
inline std::string with_crc(const std::string& body) { return body + "crc32 " + hex8(crc32_ieee(body)) + "\n"; }

class IvStore : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/msecgw-store-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    std::string file(const std::string& id) const { return dir + "/iv-" + id + ".store"; }

    std::string slurp(const std::string& path) const
    {
        std::ifstream in(path, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    void spit(const std::string& path, const std::string& data) const
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << data;
    }

    /// open() must fail with errc::io, naming the file and containing `what` (if not empty).
    void expect_corrupt(const std::string& id, const std::string& what, uint64_t limit = 1000)
    {
        result<iv_store> s = iv_store::open(dir, id, 2, limit);
        ASSERT_FALSE(s.ok()) << "accepted:\n" << slurp(file(id));
        EXPECT_EQ(s.err().code, errc::io);
        EXPECT_NE(s.err().detail.find(file(id)), std::string::npos) << s.err().detail;
        EXPECT_NE(s.err().detail.find(what), std::string::npos) << s.err().detail;
    }

    /// A valid file with three lcores and some reservations.
    std::string make_valid(const std::string& id)
    {
        result<iv_store> s = iv_store::open(dir, id, 3, 1000);
        EXPECT_TRUE(s.ok());
        EXPECT_TRUE(s->reserve(0, 100).ok());
        EXPECT_TRUE(s->reserve(2, 7).ok());
        return slurp(file(id));
    }

    std::string dir;
};

} // namespace msecgw::store::test
