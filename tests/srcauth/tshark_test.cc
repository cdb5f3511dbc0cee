// The wire format through the Lua dissector (tools/wireshark/msecgw_srcauth.lua): every message type,
// produced by the library, written to a pcap as IPv4 protocol 253 (how tshark hands over a decrypted
// ESP payload whose Next Header is 253), dissected with `tshark -X lua_script:...`; every field of
// every frame is compared with what the library wrote. Skips when tshark is not installed.

#include "test_util.hh"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "../gkm/pcap_writer.hh"
#include "../common/run_command.hh"
#include "srcauth/manifest.hh"
#include "srcauth/signed.hh"
#include "srcauth/tesla.hh"

using namespace msecgw;
using namespace msecgw::srcauth;
using namespace msecgw::srcauth::test;

namespace {

constexpr uint32_t sender = 0xc0000201;
constexpr uint32_t group = 0xef010203;

std::string run(const std::string& command)
{
    return msecgw::test::run_command(command);
}

std::string hex_of(const uint8_t* p, size_t n)
{
    std::string s;
    char b[3];
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(b, sizeof b, "%02x", p[i]);
        s += b;
    }
    return s;
}

/// An inner IPv4/UDP packet of `len` bytes from the sender to the group.
void fill_inner(uint8_t* ip, uint32_t len)
{
    std::fill(ip, ip + len, uint8_t(0xab));
    ip[0] = 0x45;
    ip[1] = 0;
    store_be16(ip + 2, uint16_t(len));
    store_be16(ip + 4, 7);
    store_be16(ip + 6, 0);
    ip[8] = 32;
    ip[9] = 17;
    store_be16(ip + 10, 0);
    store_be32(ip + 12, sender);
    store_be32(ip + 16, group);
    store_be16(ip + 10, gkm::test::pcap_writer::ipv4_checksum(ip));
    store_be16(ip + 20, 5000);
    store_be16(ip + 22, 5001);
    store_be16(ip + 24, uint16_t(len - 20));
    store_be16(ip + 26, 0);
}

/// Fields tshark must show, in one -T fields run (occurrences joined by ',').
const std::vector<std::string> fields{
    "srcauth.version", "srcauth.type", "srcauth.next", "srcauth.length", "srcauth.sender", "srcauth.seq",
    "srcauth.tesla.interval", "srcauth.tesla.disclosed_interval", "srcauth.tesla.key", "srcauth.tesla.mac",
    "srcauth.boot.t0", "srcauth.boot.interval_ns", "srcauth.boot.delay", "srcauth.boot.chain_length",
    "srcauth.boot.commit_interval", "srcauth.boot.mac_alg", "srcauth.boot.key", "srcauth.mf.first", "srcauth.mf.count",
    "srcauth.mf.digest_len", "srcauth.mf.digest", "srcauth.sig_alg", "srcauth.signature", "srcauth.reserved", "udp.dstport",
};

using frame_fields = std::map<std::string, std::string>;

class srcauth_tshark : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (run("command -v tshark").empty()) {
            GTEST_SKIP() << "tshark not installed";
        }
        const char* lua = std::getenv("MSECGW_SRCAUTH_LUA");
        ASSERT_NE(lua, nullptr) << "meson passes the dissector path in MSECGW_SRCAUTH_LUA";
        script = lua;
        dir = std::filesystem::temp_directory_path() / ("srcauth_tshark_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        pcap = std::make_unique<gkm::test::pcap_writer>((dir / "srcauth.pcap").string());
    }
    void TearDown() override
    {
        if (!dir.empty()) {
            if (std::getenv("SRCAUTH_KEEP_CAPTURE") == nullptr) { std::filesystem::remove_all(dir); }
        }
    }

    void add(const uint8_t* p, size_t n) { pcap->add_ip(sender, group, wire::esp_next_header, std::span(p, n)); }

    /// One map of field -> value per frame.
    std::vector<frame_fields> dissect()
    {
        std::string cmd = "tshark -n -X lua_script:" + script + " -r " + (dir / "srcauth.pcap").string() +
                          " -T fields -E occurrence=a -E aggregator=, -E separator=/t";
        for (const auto& f : fields) {
            cmd += " -e " + f;
        }
        std::istringstream out(run(cmd + " 2>/dev/null"));
        std::vector<frame_fields> frames;
        std::string line;
        while (std::getline(out, line)) {
            frame_fields ff;
            std::istringstream cols(line);
            std::string v;
            for (const auto& f : fields) {
                std::getline(cols, v, '\t');
                v.erase(std::remove(v.begin(), v.end(), ':'), v.end());
                ff[f] = v;
            }
            frames.push_back(ff);
        }
        return frames;
    }

    std::string script;
    std::filesystem::path dir;
    std::unique_ptr<gkm::test::pcap_writer> pcap;
};

} // namespace

TEST_F(srcauth_tshark, EveryMessageTypeAndFieldDissects)
{
    crypto::engine e = new_engine();
    key_pair keys = new_key_pair(wire::sig_alg::ed25519);
    const uint64_t t0 = 1'700'000'000'000'000'000ull, interval = 20'000'000;
    auto tesla = tesla_sender::create(e, {sender, t0, interval, 3, 500});
    ASSERT_TRUE(tesla.ok());
    const uint64_t now = t0 + 7 * interval + 5;

    std::array<uint8_t, 128> boot{};
    ASSERT_EQ(tesla->write_bootstrap(e, keys.priv, now, boot), 128u);
    add(boot.data(), boot.size());

    std::vector<uint8_t> td(36 + 60);
    fill_inner(td.data() + 36, 60);
    const tag_job tj{td.data(), 60, wire::next_ipv4};
    ASSERT_EQ(tesla->tag_burst(e, std::span(&tj, 1), now), 1u);
    add(td.data(), td.size());

    std::array<uint8_t, 48> disc{};
    ASSERT_EQ(tesla->write_disclosure(e, now, disc), 48u);
    add(disc.data(), disc.size());

    auto ms = manifest_sender::create({sender, 2, 0});
    ASSERT_TRUE(ms.ok());
    std::vector<uint8_t> md1(16 + 40), md2(16 + 41);
    fill_inner(md1.data() + 16, 40);
    fill_inner(md2.data() + 16, 41);
    const std::array<tag_job, 2> mj{tag_job{md1.data(), 40, 4}, tag_job{md2.data(), 41, 4}};
    ASSERT_EQ(ms->tag_burst(e, mj, 0), 2u);
    add(md1.data(), md1.size());
    std::vector<uint8_t> mf(ms->max_manifest_len());
    signer mk = std::move(new_key_pair(wire::sig_alg::ecdsa_p256).priv);
    ASSERT_EQ(ms->write_manifest(e, mk, mf), wire::manifest_len(2));
    add(mf.data(), mf.size());

    sign_sender ss(sender, std::move(keys.priv));
    std::vector<uint8_t> sd(20 + 48 + 64);
    fill_inner(sd.data() + 20, 48);
    const tag_job sj{sd.data(), 48, 4};
    uint8_t ok = 0;
    ASSERT_EQ(ss.tag_burst(e, std::span(&sj, 1), std::span(&ok, 1)), 1u);
    add(sd.data(), sd.size());

    const std::vector<frame_fields> f = dissect();
    ASSERT_EQ(f.size(), 6u) << "tshark did not dissect every frame (is the Lua script loading?)";
    for (const auto& fr : f) {
        EXPECT_EQ(fr.at("srcauth.version"), "1");
        EXPECT_EQ(fr.at("srcauth.sender"), "0xc0000201");
    }
    // 1 bootstrap: commits to K_{7-3} of the chain.
    EXPECT_EQ(f[0].at("srcauth.type"), "4");
    EXPECT_EQ(f[0].at("srcauth.next"), "59");
    EXPECT_EQ(f[0].at("srcauth.length"), "128");
    EXPECT_EQ(f[0].at("srcauth.seq"), "1");
    EXPECT_EQ(f[0].at("srcauth.boot.t0"), std::to_string(t0));
    EXPECT_EQ(f[0].at("srcauth.boot.interval_ns"), std::to_string(interval));
    EXPECT_EQ(f[0].at("srcauth.boot.delay"), "3");
    EXPECT_EQ(f[0].at("srcauth.boot.chain_length"), "500");
    EXPECT_EQ(f[0].at("srcauth.boot.commit_interval"), "4");
    EXPECT_EQ(f[0].at("srcauth.boot.mac_alg"), "1");
    EXPECT_EQ(f[0].at("srcauth.sig_alg"), "1");
    EXPECT_EQ(f[0].at("srcauth.boot.key"), hex_of(boot.data() + 48, 16));
    EXPECT_EQ(f[0].at("srcauth.signature"), hex_of(boot.data() + 64, 64));
    EXPECT_EQ(f[0].at("srcauth.reserved"), "0000");
    // 2 tesla_data in interval 7 (no key: keys travel in disclosures), the inner UDP packet dissected.
    EXPECT_EQ(f[1].at("srcauth.type"), "1");
    EXPECT_EQ(f[1].at("srcauth.next"), "4");
    EXPECT_EQ(f[1].at("srcauth.length"), "36");
    EXPECT_EQ(f[1].at("srcauth.seq"), "1");
    EXPECT_EQ(f[1].at("srcauth.tesla.interval"), "7");
    EXPECT_EQ(f[1].at("srcauth.tesla.mac"), hex_of(td.data() + 20, 16));
    EXPECT_EQ(f[1].at("srcauth.tesla.disclosed_interval"), "");
    EXPECT_EQ(f[1].at("srcauth.tesla.key"), "");
    EXPECT_EQ(f[1].at("srcauth.reserved"), "");
    EXPECT_EQ(f[1].at("udp.dstport"), "5001");
    // 3 disclosure of K_4, the key the bootstrap committed to.
    EXPECT_EQ(f[2].at("srcauth.type"), "5");
    EXPECT_EQ(f[2].at("srcauth.next"), "59");
    EXPECT_EQ(f[2].at("srcauth.length"), "48");
    EXPECT_EQ(f[2].at("srcauth.tesla.disclosed_interval"), "4");
    EXPECT_EQ(f[2].at("srcauth.tesla.key"), hex_of(boot.data() + 48, 16));
    EXPECT_EQ(f[2].at("srcauth.reserved"), std::string(24, '0'));
    // 4 manifest_data.
    EXPECT_EQ(f[3].at("srcauth.type"), "2");
    EXPECT_EQ(f[3].at("srcauth.length"), "16");
    EXPECT_EQ(f[3].at("srcauth.seq"), "1");
    EXPECT_EQ(f[3].at("udp.dstport"), "5001");
    // 5 manifest over both packets: digests are SHA-256(header || inner) truncated to 16 bytes.
    std::array<uint8_t, 32> d1{}, d2{};
    crypto::sha256_one(e, md1.data(), uint32_t(md1.size()), d1.data());
    crypto::sha256_one(e, md2.data(), uint32_t(md2.size()), d2.data());
    EXPECT_EQ(f[4].at("srcauth.type"), "6");
    EXPECT_EQ(f[4].at("srcauth.next"), "59");
    EXPECT_EQ(f[4].at("srcauth.length"), std::to_string(wire::manifest_len(2)));
    EXPECT_EQ(f[4].at("srcauth.mf.first"), "1");
    EXPECT_EQ(f[4].at("srcauth.mf.count"), "2");
    EXPECT_EQ(f[4].at("srcauth.mf.digest_len"), "16");
    EXPECT_EQ(f[4].at("srcauth.sig_alg"), "2");
    EXPECT_EQ(f[4].at("srcauth.mf.digest"), hex_of(d1.data(), 16) + "," + hex_of(d2.data(), 16));
    EXPECT_EQ(f[4].at("srcauth.signature"), hex_of(mf.data() + 64, 64));
    EXPECT_EQ(f[4].at("srcauth.reserved"), "00000000");
    // 6 signed_data with its trailer.
    EXPECT_EQ(f[5].at("srcauth.type"), "3");
    EXPECT_EQ(f[5].at("srcauth.length"), "20");
    EXPECT_EQ(f[5].at("srcauth.sig_alg"), "1");
    EXPECT_EQ(f[5].at("srcauth.signature"), hex_of(sd.data() + 68, 64));
    EXPECT_EQ(f[5].at("srcauth.reserved"), "000000");
    EXPECT_EQ(f[5].at("udp.dstport"), "5001");

    const std::string bad = run("tshark -n -X lua_script:" + script + " -r " + (dir / "srcauth.pcap").string() +
                                " -Y '_ws.malformed || _ws.expert.severity >= error' 2>/dev/null");
    EXPECT_EQ(bad, "");
}
