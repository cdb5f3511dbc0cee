// Issue [I] acceptance 5: a malformed-packet corpus through the real data path (process_burst on
// a real SA snapshot, tests' in-process harness fuzz/harness/dp_harness.hh). Every valid test frame
// truncated at every offset, every header byte set to out-of-range values, every byte of every ESP
// packet flipped, and decrypted plaintext corrupted and re-authenticated: no crash, every frame
// accounted for exactly once (transmitted, or dropped under one named reason), and no corrupted
// ESP packet accepted. The per-reason counts are printed.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>

#include "dp_harness.hh"

using namespace msecgw;
using fuzz::frame;

namespace {

struct tally {
    uint64_t frames = 0;
    uint64_t accepted = 0;
    std::map<std::string, uint64_t> by_reason;

    void print(const char* what) const
    {
        std::printf("%s: %llu frames, %llu accepted\n", what, static_cast<unsigned long long>(frames),
                    static_cast<unsigned long long>(accepted));
        for (const auto& [r, n] : by_reason) {
            std::printf("  %-22s %llu\n", r.c_str(), static_cast<unsigned long long>(n));
        }
    }
};

class Malformed : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        ASSERT_TRUE(fuzz::init_eal());
        h = fuzz::dp_harness::create().release();
        ASSERT_NE(h, nullptr);
        const std::array<uint8_t, 16> src6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        const std::array<uint8_t, 16> grp6{0xff, 0x3e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 7};
        clear = {fuzz::udp4({10, 1, 0, 1}, {239, 1, 0, 1}, 64), fuzz::udp4({10, 1, 0, 1}, {239, 1, 0, 2}, 33, 100),
                 fuzz::udp6(src6, grp6, 80), fuzz::udp4({10, 2, 0, 1}, {239, 2, 0, 1}, 40)};
        for (const frame& f : clear) {
            const fuzz::burst_result r = h->outbound(f);
            ASSERT_EQ(r.out.size(), 1u);
            esp.push_back(r.out[0]);
        }
        bypass = fuzz::udp4({10, 1, 0, 1}, {239, 3, 0, 1}, 50);
    }

    /// One frame alone, from a fresh replay state; checks it is accounted for exactly once.
    /// Returns true when it was transmitted.
    static bool feed(const frame& f, bool inbound, tally& t, const std::string& what)
    {
        h->reset();
        const fuzz::burst_result r = inbound ? h->inbound(f) : h->outbound(f);
        ++t.frames;
        EXPECT_EQ(r.out.size() + r.dropped(), 1u) << what;
        if (!r.out.empty()) {
            ++t.accepted;
            return true;
        }
        const drop_reason why = r.sole_reason();
        EXPECT_NE(why, drop_reason::count_) << what;
        if (why != drop_reason::count_) {
            ++t.by_reason[std::string(to_label(why))];
        }
        return false;
    }

    /// The valid frames this suite corrupts, with the direction they are received in.
    static std::vector<std::pair<frame, bool>> valid()
    {
        std::vector<std::pair<frame, bool>> v;
        for (const frame& f : clear) {
            v.emplace_back(f, false);
        }
        for (const frame& f : esp) {
            v.emplace_back(f, true);
        }
        v.emplace_back(bypass, true);
        return v;
    }

    static std::size_t l3_of(const frame& f) { return f[12] == 0x81 ? 18 : 14; }
    /// Start of the ESP header of an unfragmented ESP frame.
    static std::size_t esp_of(const frame& f) { return l3_of(f) + ((f[l3_of(f)] >> 4) == 4 ? 20 : 40); }

    static fuzz::dp_harness* h;
    static std::vector<frame> clear, esp;
    static frame bypass;
};

fuzz::dp_harness* Malformed::h = nullptr;
std::vector<frame> Malformed::clear, Malformed::esp;
frame Malformed::bypass;

TEST_F(Malformed, ValidFramesPass)
{
    tally t;
    for (const auto& [f, in] : valid()) {
        EXPECT_TRUE(feed(f, in, t, "valid frame"));
    }
    EXPECT_EQ(t.accepted, t.frames);
}

TEST_F(Malformed, TruncatedAtEveryOffset)
{
    tally t;
    for (const auto& [f, in] : valid()) {
        for (std::size_t n = 0; n < f.size(); ++n) {
            const frame cut(f.begin(), f.begin() + static_cast<long>(n));
            EXPECT_FALSE(feed(cut, in, t, "cut at " + std::to_string(n))) << "a truncated frame was accepted";
        }
    }
    t.print("truncated");
    EXPECT_EQ(t.accepted, 0u);
}

TEST_F(Malformed, EveryHeaderByteOutOfRange)
{
    // Every byte of the Ethernet, 802.1Q, IP, UDP and ESP headers (and the IV) set to 0x00, 0xff,
    // and its value with the low or the high bit flipped: whatever happens is accounted for once.
    tally t;
    for (const auto& [f, in] : valid()) {
        const bool is_esp = in && f != bypass;
        const std::size_t end = is_esp ? esp_of(f) + 16 : l3_of(f) + ((f[l3_of(f)] >> 4) == 4 ? 20 : 40) + 8;
        for (std::size_t i = 0; i < end; ++i) {
            for (uint8_t v : {uint8_t{0}, uint8_t{0xff}, uint8_t(f[i] ^ 1), uint8_t(f[i] ^ 0x80)}) {
                if (v == f[i]) {
                    continue;
                }
                frame g = f;
                g[i] = v;
                const bool passed = feed(g, in, t, "byte " + std::to_string(i) + " = " + std::to_string(v));
                if (passed && is_esp && i >= esp_of(f)) {
                    ADD_FAILURE() << "ESP accepted with header byte " << i << " changed";
                }
            }
        }
    }
    t.print("header bytes out of range");
}

TEST_F(Malformed, EspWithEveryByteFlipped)
{
    tally t;
    for (const frame& f : esp) {
        for (std::size_t i = esp_of(f); i < f.size(); ++i) {
            for (uint8_t mask : {uint8_t{0xff}, uint8_t{0x01}}) {
                frame g = f;
                g[i] ^= mask;
                EXPECT_FALSE(feed(g, true, t, "flip byte " + std::to_string(i))) << "corrupted ESP accepted";
            }
        }
    }
    t.print("ESP byte flipped");
    EXPECT_EQ(t.accepted, 0u);
    EXPECT_EQ(t.by_reason.count("auth_failed"), 1u);
    EXPECT_EQ(t.by_reason.count("esp_no_sa"), 1u);
}

TEST_F(Malformed, CorruptPlaintextReauthenticated)
{
    // The bytes after the IV changed and the ICV recomputed with the SA's key: what an attacker
    // holding the group key could send. Every corrupted trailer is esp_bad_trailer; every frame
    // is accounted for once; the unchanged plaintext resealed passes (the control).
    tally t;
    for (const frame& f : esp) {
        frame same = f;
        ASSERT_TRUE(h->decrypt(same));
        ASSERT_TRUE(h->reseal(same));
        EXPECT_EQ(same, f);
        for (std::size_t i = esp_of(f) + 16; i + 16 < f.size(); ++i) {
            frame g = f;
            ASSERT_TRUE(h->decrypt(g));
            g[i] ^= 0xff;
            ASSERT_TRUE(h->reseal(g));
            const bool passed = feed(g, true, t, "plaintext byte " + std::to_string(i));
            if (i + 16 + 2 >= f.size()) { // pad length and next header
                EXPECT_FALSE(passed) << "bad trailer accepted at " << i;
            }
        }
    }
    t.print("plaintext corrupted and re-authenticated");
    EXPECT_EQ(t.by_reason.count("esp_bad_trailer"), 1u);
}

TEST_F(Malformed, ReplayedInASecondBurst)
{
    h->reset();
    const fuzz::burst_result first = h->inbound(esp[0]);
    ASSERT_EQ(first.opened, 1u);
    const fuzz::burst_result again = h->inbound(esp[0]);
    EXPECT_TRUE(again.out.empty());
    EXPECT_EQ(again.sole_reason(), drop_reason::replay);
}

} // namespace
