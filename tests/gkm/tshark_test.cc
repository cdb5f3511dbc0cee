// Acceptance 2 of issue 7: tshark's ISAKMP dissector parses every message we emit without a
// malformed or error-level expert item and, given the IKE SA keys through the operator keylog in
// Wireshark's ikev2_decryption_table format, decrypts our SK payloads.

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "loopback_fixture.hh"
#include "pcap_writer.hh"
#include "test_pki.hh"
#include "../common/run_command.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace msecgw::gkm::test;

namespace {

std::string run(const std::string& command)
{
    return msecgw::test::run_command(command);
}

size_t count_lines(const std::string& s)
{
    size_t n = 0;
    for (char c : s) {
        n += c == '\n' ? 1 : 0;
    }
    return n;
}

std::string shell_quote(const std::string& s)
{
    std::string out = "'";
    for (char c : s) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

} // namespace

class gkm_tshark : public gkm_loopback {
protected:
    void SetUp() override
    {
        if (run("command -v tshark").empty()) {
            GTEST_SKIP() << "tshark not installed";
        }
        dir = std::filesystem::temp_directory_path() /
              ("gkm_tshark_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir);
        pcap = std::make_unique<pcap_writer>((dir / "gkm.pcap").string());
        observer = [this](datagram_direction d, const endpoint& local, const endpoint& remote, byte_view data) {
            if (d == datagram_direction::sent) {
                pcap->add(local, remote, data);
            }
        };
        gkm_loopback::SetUp();
    }

    void TearDown() override
    {
        if (!dir.empty()) {
            if (std::getenv("GKM_KEEP_CAPTURE") == nullptr) { std::filesystem::remove_all(dir); }
        }
    }

    /// tshark on our capture, with the GCKS port decoded as ISAKMP.
    std::string tshark(const std::string& args) const
    {
        return run("tshark -n -r " + shell_quote((dir / "gkm.pcap").string()) + " -d udp.port==" +
                   std::to_string(server->local().port) + ",isakmp " + args + " 2>&1");
    }

    /// -o options that load every record of the keylog into ikev2_decryption_table.
    std::string decryption_options() const
    {
        std::ifstream in(dir / "ikev2.keylog");
        std::string line;
        std::string opts;
        while (std::getline(in, line)) {
            opts += " -o " + shell_quote("uat:ikev2_decryption_table:" + line);
        }
        return opts;
    }

    void register_members()
    {
        for (const char* id : {"gm-a", "gm-b", "gm-outsider"}) {
            member_config c = member(id);
            c.keylog_path = (dir / "ikev2.keylog").string();
            c.group = std::string(id) == "gm-b" ? dh_group::curve25519 : dh_group::ecp256;
            add_member(std::move(c));
        }
        run_registrations();
        ASSERT_EQ(members[0]->state(), member_state::registered);
        ASSERT_EQ(members[1]->state(), member_state::registered);
        ASSERT_EQ(members[2]->rejection(), notify_type::authorization_failed);
    }

    std::filesystem::path dir;
    std::unique_ptr<pcap_writer> pcap;
};

TEST_F(gkm_tshark, EveryMessageDissectsWithoutMalformedOrErrors)
{
    register_members();
    ASSERT_EQ(pcap->count(), 12u);  // 3 members × (IKE_SA_INIT + GSA_AUTH) × (request + response)
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_EQ(pcap->count(), 14u);  // one GSA_REKEY to each of the 2 registered members

    const std::string all = tshark("-Y isakmp -T fields -e frame.number -e isakmp.exchangetype");
    EXPECT_EQ(count_lines(all), 14u) << all;
    const std::string rekeys = tshark("-Y " + shell_quote("isakmp.exchangetype == 41") + " -T fields -e frame.number");
    EXPECT_EQ(count_lines(rekeys), 2u) << rekeys;
    const std::string bad = tshark("-Y " + shell_quote("_ws.malformed || _ws.expert.severity >= error"));
    EXPECT_EQ(bad, "") << bad;
    // Also with decryption on: the decrypted inner payloads dissect cleanly too.
    const std::string bad_decrypted =
        tshark(decryption_options() + " -Y " + shell_quote("_ws.malformed || _ws.expert.severity >= error"));
    EXPECT_EQ(bad_decrypted, "") << bad_decrypted;
}

TEST_F(gkm_tshark, KeylogLetsTsharkDecryptEverySkPayload)
{
    register_members();
    std::ifstream keylog(dir / "ikev2.keylog");
    std::stringstream records;
    records << keylog.rdbuf();
    EXPECT_EQ(count_lines(records.str()), 3u);  // one IKE SA per member

    // Without keys tshark sees only ciphertext; with them it shows the inner IDi/IDr/AUTH/IDg.
    EXPECT_EQ(tshark("-Y isakmp.auth.method -T fields -e frame.number"), "");
    const std::string auth = tshark(decryption_options() + " -Y isakmp.auth.method -T fields -e frame.number");
    EXPECT_EQ(count_lines(auth), 6u) << auth;  // every GSA_AUTH request and response carries AUTH
    const std::string verbose = tshark(decryption_options() + " -V");
    EXPECT_NE(verbose.find("Decrypted Data"), std::string::npos);
    EXPECT_NE(verbose.find("ID_KEY_ID: 676d2d61"), std::string::npos);  // IDi "gm-a", only after decryption
    EXPECT_NE(verbose.find("Payload: Group Identification (50)"), std::string::npos);
    EXPECT_NE(verbose.find("Payload: Group Security Association (51)"), std::string::npos);
    EXPECT_NE(verbose.find("Payload: Key Download (52)"), std::string::npos);
    // AUTHORIZATION_FAILED (46) for the outsider (tshark 4.0 still names 46 CHILD_SA_NOT_FOUND).
    const std::string refused = decryption_options() + " -Y " + shell_quote("isakmp.notify.msgtype == 46") +
                                " -T fields -e frame.number";
    EXPECT_EQ(count_lines(tshark(refused)), 1u);
}

TEST_F(gkm_tshark, CookieExchangeDissectsAndDecrypts)
{
    gcks_config c = default_gcks_config();
    c.admission.cookie_threshold = 0;  // every IKE_SA_INIT must carry a COOKIE
    start_gcks(std::move(c));
    member_config m = member("gm-a");
    m.keylog_path = (dir / "ikev2.keylog").string();
    gkm::group_member& a = add_member(std::move(m));
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    ASSERT_EQ(pcap->count(), 6u);  // IKE_SA_INIT, N(COOKIE), IKE_SA_INIT + COOKIE, its answer, GSA_AUTH × 2

    const std::string cookies =
        tshark("-Y " + shell_quote("isakmp.notify.msgtype == 16390") + " -T fields -e frame.number");
    EXPECT_EQ(cookies, "2\n3\n") << cookies;  // the GCKS's answer and the member's retry
    const std::string bad = tshark(decryption_options() + " -Y " + shell_quote("_ws.malformed || _ws.expert.severity >= error"));
    EXPECT_EQ(bad, "") << bad;
    EXPECT_NE(tshark(decryption_options() + " -V").find("Decrypted Data"), std::string::npos);
}

TEST_F(gkm_tshark, CertificateExchangeDissectsAndDecrypts)
{
    pki keys;
    ASSERT_TRUE(keys.ok);
    gcks_config c = default_gcks_config();
    c.certificates = keys.of("gcks");
    start_gcks(std::move(c));
    for (const char* id : {"gm-a", "gm-b"}) {  // ECDSA and RSA signatures
        member_config m = member(id);
        m.psk.clear();
        m.certificates = keys.of(id);
        m.keylog_path = (dir / "ikev2.keylog").string();
        add_member(std::move(m));
    }
    run_registrations();
    ASSERT_EQ(members[0]->state(), member_state::registered) << members[0]->last_error();
    ASSERT_EQ(members[1]->state(), member_state::registered) << members[1]->last_error();
    const std::string bad = tshark(decryption_options() + " -Y " + shell_quote("_ws.malformed || _ws.expert.severity >= error"));
    EXPECT_EQ(bad, "") << bad;
    // Every GSA_AUTH request and response carries a CERT (X.509 Certificate - Signature) and a
    // Digital Signature AUTH (RFC 7427, method 14).
    const std::string certs = tshark(decryption_options() + " -Y " + shell_quote("isakmp.cert.encoding == 4") +
                                     " -T fields -e frame.number");
    EXPECT_EQ(count_lines(certs), 4u) << certs;
    const std::string sigs = tshark(decryption_options() + " -Y " + shell_quote("isakmp.auth.method == 14") +
                                    " -T fields -e frame.number");
    EXPECT_EQ(count_lines(sigs), 4u) << sigs;
}
