// GSA_AUTH with certificates (RFC 7427 digital signatures): members and the GCKS sign with X.509
// certificates (ECDSA P-256 and RSA) made here with the openssl command; a certificate from
// another CA, one whose commonName is not the identity, and an identity outside the group are
// refused.
#include "loopback_fixture.hh"
#include "test_pki.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace msecgw::gkm::test;

namespace {

class gkm_certificates : public gkm_loopback {
protected:
    void SetUp() override
    {
        ASSERT_TRUE(keys.ok) << "openssl could not make the test PKI in " << keys.dir;
        gcks_config c = default_gcks_config();
        c.peers.clear();  // no pre-shared key at all: certificates only
        c.certificates = keys.of("gcks");
        c.groups[0].members.push_back("gm-outsider-in-no-group");
        start_gcks(std::move(c));
    }

    member_config cert_member(const std::string& id, const std::string& file = "")
    {
        member_config c = member(id);
        c.psk.clear();
        c.certificates = keys.of(file.empty() ? id : file);
        return c;
    }

    pki keys;
};

} // namespace

TEST_F(gkm_certificates, EcdsaAndRsaMembersRegisterWithAGcksThatSignsToo)
{
    gkm::group_member& a = add_member(cert_member("gm-a"));  // ECDSA P-256
    gkm::group_member& b = add_member(cert_member("gm-b"));  // RSA 2048
    run_registrations();
    ASSERT_EQ(a.state(), member_state::registered) << a.last_error();
    ASSERT_EQ(b.state(), member_state::registered) << b.last_error();
    EXPECT_EQ(a.membership()->teks[0].spi, b.membership()->teks[0].spi);
    EXPECT_NE(a.membership()->sender_id, b.membership()->sender_id);
    EXPECT_EQ(server->counters().registrations, 2u);
}

TEST_F(gkm_certificates, ACertificateFromAnotherCaIsRefused)
{
    gkm::group_member& rogue = add_member(cert_member("gm-a", "rogue-gm-a"));
    run_registrations();
    EXPECT_NE(rogue.state(), member_state::registered);
    EXPECT_EQ(rogue.rejection(), notify_type::authentication_failed);
    EXPECT_EQ(rogue.membership(), nullptr);
    EXPECT_EQ(server->counters().authentication_failed, 1u);
}

TEST_F(gkm_certificates, AnIdentityOutsideTheGroupIsNotAuthorized)
{
    gkm::group_member& outsider = add_member(cert_member("gm-outsider"));
    run_registrations();
    EXPECT_EQ(outsider.rejection(), notify_type::authorization_failed);
    EXPECT_EQ(outsider.membership(), nullptr);
}

TEST_F(gkm_certificates, ACertificateMustNameItsIdentity)
{
    member_config c = cert_member("gm-b", "gm-a");  // gm-b presenting gm-a's certificate
    result<std::unique_ptr<gkm::group_member>> m = gkm::group_member::create(std::move(c));
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.err().detail.find("commonName 'gm-a' is not the identity 'gm-b'"), std::string::npos) << m.err().detail;
}

TEST_F(gkm_certificates, AMemberWithoutTheCaRefusesASigningGcks)
{
    member_config c = cert_member("gm-a");
    c.certificates.ca_file.clear();  // it cannot verify the GCKS's certificate
    gkm::group_member& a = add_member(std::move(c));
    run_registrations();
    EXPECT_EQ(a.state(), member_state::failed);
    EXPECT_EQ(a.membership(), nullptr);
}
