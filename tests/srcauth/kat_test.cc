// Known-answer tests of every primitive lib/srcauth uses, against OpenSSL as the independent
// implementation: SHA-256 (multi-buffer and direct), HMAC-SHA256, AES-128-GMAC, the TESLA chain
// functions F and F', and Ed25519 / ECDSA P-256 signatures in both directions.

#include "test_util.hh"

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "gkm/crypto.hh"
#include "srcauth/tesla_chain.hh"

using namespace msecgw;
using namespace msecgw::srcauth;
using namespace msecgw::srcauth::test;

namespace {

bytes openssl_sha256(const bytes& m)
{
    bytes d(32);
    unsigned len = 0;
    EVP_Digest(m.data(), m.size(), d.data(), &len, EVP_sha256(), nullptr);
    return d;
}

bytes openssl_hmac(const bytes& key, const bytes& m)
{
    bytes d(32);
    unsigned len = 0;
    HMAC(EVP_sha256(), key.data(), int(key.size()), m.data(), m.size(), d.data(), &len);
    return d;
}

/// GMAC as AES-GCM with an empty plaintext and the message as AAD.
bytes openssl_gmac(const bytes& key, const bytes& iv, const bytes& m)
{
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    int len = 0;
    bytes tag(16);
    EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), nullptr, nullptr, nullptr);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, int(iv.size()), nullptr);
    EVP_EncryptInit_ex(c, nullptr, nullptr, key.data(), iv.data());
    EVP_EncryptUpdate(c, nullptr, &len, m.data(), int(m.size()));
    EVP_EncryptFinal_ex(c, nullptr, &len);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag.data());
    EVP_CIPHER_CTX_free(c);
    return tag;
}

bytes hex(std::string_view h)
{
    bytes b;
    for (size_t i = 0; i + 1 < h.size(); i += 2) {
        b.push_back(uint8_t(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    }
    return b;
}

const std::vector<uint32_t> lengths{0, 1, 15, 16, 17, 55, 56, 63, 64, 65, 100, 127, 128, 1000, 1420, 1500, 9000};

} // namespace

TEST(srcauth_kat, Sha256FixedVector)
{
    crypto::engine e = new_engine();
    const bytes abc{'a', 'b', 'c'};
    bytes d(32);
    crypto::sha256_one(e, abc.data(), 3, d.data());
    EXPECT_EQ(d, hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    bytes m(32);
    const crypto::sha256_op op{abc.data(), 3, m.data()};
    ASSERT_EQ(crypto::sha256_burst(e, std::span(&op, 1)), 1u);
    EXPECT_EQ(m, d);
}

TEST(srcauth_kat, Sha256BurstMatchesOpenSsl)
{
    crypto::engine e = new_engine();
    std::vector<bytes> msgs;
    for (int round = 0; round < 3; ++round) { // more than one multi-buffer lane set, mixed lengths
        for (uint32_t l : lengths) {
            msgs.push_back(random_bytes(l));
        }
    }
    std::vector<bytes> out(msgs.size(), bytes(32));
    std::vector<crypto::sha256_op> ops;
    for (size_t i = 0; i < msgs.size(); ++i) {
        ops.push_back({msgs[i].data(), uint32_t(msgs[i].size()), out[i].data()});
    }
    ASSERT_EQ(crypto::sha256_burst(e, ops), msgs.size());
    for (size_t i = 0; i < msgs.size(); ++i) {
        EXPECT_EQ(out[i], openssl_sha256(msgs[i])) << "length " << msgs[i].size();
        bytes one(32);
        crypto::sha256_one(e, msgs[i].data(), uint32_t(msgs[i].size()), one.data());
        EXPECT_EQ(one, out[i]);
    }
}

// Every burst size from 1 to 2 * max_burst + 2 (partly filled lane sets, chunk boundaries), message
// lengths cycling through `lengths` from a different start in each burst, and empty messages given
// as a null pointer (what an empty vector's data() is). Regression: sha256_burst handed ipsec-mb a
// null src for those; its checked submit (builds without NDEBUG, e.g. the ASan build) refused the
// job, so 48 of 51 messages were hashed there while the release build hashed all.
TEST(srcauth_kat, Sha256BurstEverySizeAndNullEmptyMessages)
{
    crypto::engine e = new_engine();
    for (size_t n = 1; n <= 2 * max_burst + 2; ++n) {
        std::vector<bytes> msgs;
        for (size_t i = 0; i < n; ++i) {
            msgs.push_back(random_bytes(lengths[(i + n) % lengths.size()]));
        }
        std::vector<bytes> out(n, bytes(32));
        std::vector<crypto::sha256_op> ops;
        for (size_t i = 0; i < n; ++i) {
            ops.push_back({msgs[i].empty() ? nullptr : msgs[i].data(), uint32_t(msgs[i].size()), out[i].data()});
        }
        ASSERT_EQ(crypto::sha256_burst(e, ops), n) << n << " messages";
        for (size_t i = 0; i < n; ++i) {
            ASSERT_EQ(out[i], openssl_sha256(msgs[i])) << n << " messages, #" << i << ", length " << msgs[i].size();
        }
    }
}

TEST(srcauth_kat, HmacSha256Rfc4231Case2AndOpenSsl)
{
    crypto::engine e = new_engine();
    const bytes key{'J', 'e', 'f', 'e'};
    const std::string text = "what do ya want for nothing?";
    const bytes msg(text.begin(), text.end());
    crypto::hmac_sha256_key k;
    ASSERT_TRUE(crypto::make_hmac_sha256_key(e, key, k).ok());
    bytes mac(32);
    const crypto::hmac_sha256_op op{&k, msg.data(), uint32_t(msg.size()), mac.data(), 32};
    ASSERT_EQ(crypto::hmac_sha256_burst(e, std::span(&op, 1)), 1u);
    EXPECT_EQ(mac, hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));

    std::vector<bytes> keys, msgs, macs;
    std::vector<crypto::hmac_sha256_key> prepared(lengths.size());
    std::vector<crypto::hmac_sha256_op> ops;
    for (size_t i = 0; i < lengths.size(); ++i) {
        keys.push_back(random_bytes(1 + i * 3 % 64));
        msgs.push_back(random_bytes(std::max<uint32_t>(1, lengths[i])));
        macs.push_back(bytes(32));
    }
    for (size_t i = 0; i < lengths.size(); ++i) {
        ASSERT_TRUE(crypto::make_hmac_sha256_key(e, keys[i], prepared[i]).ok());
        ops.push_back({&prepared[i], msgs[i].data(), uint32_t(msgs[i].size()), macs[i].data(), uint8_t(i % 2 ? 16 : 32)});
    }
    ASSERT_EQ(crypto::hmac_sha256_burst(e, ops), ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
        bytes want = openssl_hmac(keys[i], msgs[i]);
        want.resize(ops[i].mac_len);
        macs[i].resize(ops[i].mac_len);
        EXPECT_EQ(macs[i], want) << "length " << msgs[i].size();
    }
    EXPECT_FALSE(crypto::make_hmac_sha256_key(e, bytes(65), k).ok());
    const crypto::hmac_sha256_op empty{&prepared[0], msgs[0].data(), 0, mac.data(), 32};
    EXPECT_EQ(crypto::hmac_sha256_burst(e, std::span(&empty, 1)), 0u) << "ipsec-mb refuses empty messages";
}

TEST(srcauth_kat, GmacMatchesOpenSslAesGcmWithAadOnly)
{
    crypto::engine e = new_engine();
    for (uint32_t body : lengths) {
        const bytes key = random_bytes(16), iv = random_bytes(12), head = random_bytes(48), tail = random_bytes(body);
        crypto::gcm_key k;
        ASSERT_TRUE(crypto::make_gmac_key(e, std::span<const uint8_t, 16>(key.data(), 16), k).ok());
        bytes tag(16);
        const crypto::gmac_op op{&k, iv.data(), head.data(), 48, tail.data(), body, tag.data()};
        uint8_t ok = 0;
        ASSERT_EQ(crypto::gmac_burst(e, std::span(&op, 1), std::span(&ok, 1)), 1u);
        bytes whole = head;
        whole.insert(whole.end(), tail.begin(), tail.end());
        EXPECT_EQ(tag, openssl_gmac(key, iv, whole)) << "body " << body;
        // head and body adjacent: the one-call path (GCM with the message as AAD), same tag
        bytes flat(16);
        const crypto::gmac_op one{&k, iv.data(), whole.data(), 48, whole.data() + 48, body, flat.data()};
        ASSERT_EQ(crypto::gmac_burst(e, std::span(&one, 1), std::span(&ok, 1)), 1u);
        EXPECT_EQ(flat, tag) << "one-call GMAC, body " << body;
        // the TESLA data header's layout: 20 covered header bytes right before the body
        const crypto::gmac_op tesla{&k, iv.data(), whole.data() + 28, 20, whole.data() + 48, body, flat.data()};
        ASSERT_EQ(crypto::gmac_burst(e, std::span(&tesla, 1), std::span(&ok, 1)), 1u);
        EXPECT_EQ(flat, openssl_gmac(key, iv, bytes(whole.begin() + 28, whole.end()))) << "20-byte head, body " << body;
        // a separate head must be whole blocks (ipsec-mb's update)
        const crypto::gmac_op split{&k, iv.data(), head.data(), 20, tail.data(), body, flat.data()};
        EXPECT_EQ(crypto::gmac_burst(e, std::span(&split, 1), std::span(&ok, 1)), body == 0 ? 1u : 0u);
        crypto::clear_gcm_key(k);
        EXPECT_EQ(crypto::gmac_burst(e, std::span(&op, 1), std::span(&ok, 1)), 0u) << "wiped key accepted";
    }
}

TEST(srcauth_kat, TeslaChainFunctionsAreHmacOfOneByte)
{
    crypto::engine e = new_engine();
    chain_key k;
    const bytes raw = random_bytes(16);
    std::copy(raw.begin(), raw.end(), k.bytes.begin());
    chain_key f, fp;
    chain_f(e, k, f);
    chain_f_prime(e, k, fp);
    bytes want_f = openssl_hmac(raw, bytes{0x00}), want_fp = openssl_hmac(raw, bytes{0x01});
    EXPECT_EQ(bytes(f.bytes.begin(), f.bytes.end()), bytes(want_f.begin(), want_f.begin() + 16));
    EXPECT_EQ(bytes(fp.bytes.begin(), fp.bytes.end()), bytes(want_fp.begin(), want_fp.begin() + 16));
}

TEST(srcauth_kat, KeyChainIsTheOneWayChainInEveryOrder)
{
    crypto::engine e = new_engine();
    for (uint32_t n : {2u, 3u, 10u, 17u, 100u, 1000u}) {
        chain_key last;
        const bytes raw = random_bytes(16);
        std::copy(raw.begin(), raw.end(), last.bytes.begin());
        // Reference: K_{N-1} = last, K_i = HMAC(K_{i+1}, 0x00)[:16], with OpenSSL.
        std::vector<bytes> ref(n);
        ref[n - 1] = raw;
        for (uint32_t i = n - 1; i > 0; --i) {
            bytes h = openssl_hmac(ref[i], bytes{0x00});
            ref[i - 1] = bytes(h.begin(), h.begin() + 16);
        }
        auto c = key_chain::from_last(e, n, last);
        ASSERT_TRUE(c.ok());
        for (uint32_t i = 0; i < n; ++i) { // forward, as the sender walks
            const chain_key& k = c->key(e, i);
            ASSERT_EQ(bytes(k.bytes.begin(), k.bytes.end()), ref[i]) << "n " << n << " i " << i;
        }
        for (uint32_t i = n; i-- > 0;) { // backward and jumping
            const chain_key& k = c->key(e, (i * 7919) % n);
            ASSERT_EQ(bytes(k.bytes.begin(), k.bytes.end()), ref[(i * 7919) % n]);
        }
    }
}

class srcauth_sig : public ::testing::TestWithParam<wire::sig_alg> {};

TEST_P(srcauth_sig, OurSignaturesVerifyWithOpenSslAndTheirsWithUs)
{
    crypto::engine e = new_engine();
    const std::string pem = new_private_pem(GetParam());
    auto s = signer::from_pem(pem);
    ASSERT_TRUE(s.ok()) << s.err().detail;
    ASSERT_EQ(s->alg(), GetParam());
    auto v = sig_verifier::from_pem(s->public_pem());
    ASSERT_TRUE(v.ok());

    BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
    EVP_PKEY* ref = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    ASSERT_NE(ref, nullptr);

    for (int round = 0; round < 20; ++round) {
        const bytes msg = random_bytes(100 + round);
        const bytes d = openssl_sha256(msg);
        const std::span<const uint8_t, 32> dv(d.data(), 32);
        std::array<uint8_t, 64> sig{};
        ASSERT_TRUE(s->sign_digest(dv, sig));
        EXPECT_TRUE(v->verify_digest(dv, sig));

        // OpenSSL verifies ours, and makes a signature we verify.
        std::array<uint8_t, 72> der{};
        bytes theirs(64);
        if (GetParam() == wire::sig_alg::ed25519) {
            EVP_MD_CTX* c = EVP_MD_CTX_new();
            EXPECT_EQ(EVP_DigestVerifyInit(c, nullptr, nullptr, nullptr, ref), 1);
            EXPECT_EQ(EVP_DigestVerify(c, sig.data(), 64, d.data(), 32), 1);
            size_t len = 64;
            EXPECT_EQ(EVP_DigestSignInit(c, nullptr, nullptr, nullptr, ref), 1);
            EXPECT_EQ(EVP_DigestSign(c, theirs.data(), &len, d.data(), 32), 1);
            EVP_MD_CTX_free(c);
        } else {
            // ECDSA over D is ECDSA-with-SHA-256 over the message: gkm's verifier (DER, hashes itself) agrees.
            const size_t n = ecdsa_raw_to_der(sig, der);
            bytes spki;
            unsigned char* p = nullptr;
            const int spki_len = i2d_PUBKEY(ref, &p);
            spki.assign(p, p + spki_len);
            OPENSSL_free(p);
            EXPECT_TRUE(gkm::verify_signature(spki, msg, bytes(der.begin(), der.begin() + long(n))));
            // And a signature gkm's signer makes on the message converts and verifies here.
            bytes their_der(80);
            size_t len = their_der.size();
            EVP_PKEY_CTX* pc = EVP_PKEY_CTX_new(ref, nullptr);
            EVP_PKEY_sign_init(pc);
            EXPECT_EQ(EVP_PKEY_sign(pc, their_der.data(), &len, d.data(), 32), 1);
            EVP_PKEY_CTX_free(pc);
            ASSERT_TRUE(ecdsa_der_to_raw(std::span(their_der.data(), len), std::span<uint8_t, 64>(theirs.data(), 64)));
        }
        EXPECT_TRUE(v->verify_digest(dv, std::span<const uint8_t, 64>(theirs.data(), 64)));
        // Any flipped bit fails.
        sig[round % 64] ^= uint8_t(1u << (round % 8));
        EXPECT_FALSE(v->verify_digest(dv, sig));
        bytes d2 = d;
        d2[0] ^= 1;
        theirs[0] ^= 0;
        EXPECT_FALSE(v->verify_digest(std::span<const uint8_t, 32>(d2.data(), 32), std::span<const uint8_t, 64>(theirs.data(), 64)));
    }
    // share(): the same key without parsing it again, usable after the original is gone.
    auto shared = v->share();
    ASSERT_TRUE(shared.ok());
    EXPECT_EQ(shared->alg(), v->alg());
    EXPECT_EQ(shared->key_id(), v->key_id());
    { auto gone = std::move(v.value()); }
    const bytes d = openssl_sha256(random_bytes(64));
    const std::span<const uint8_t, 32> dv(d.data(), 32);
    std::array<uint8_t, 64> sig{};
    ASSERT_TRUE(s->sign_digest(dv, sig));
    EXPECT_TRUE(shared->verify_digest(dv, sig));
    sig[5] ^= 0x20;
    EXPECT_FALSE(shared->verify_digest(dv, sig));
    EVP_PKEY_free(ref);
}

INSTANTIATE_TEST_SUITE_P(algs, srcauth_sig, ::testing::Values(wire::sig_alg::ed25519, wire::sig_alg::ecdsa_p256),
                         [](const auto& i) { return i.param == wire::sig_alg::ed25519 ? "ed25519" : "ecdsa_p256"; });

TEST(srcauth_kat, EcdsaDerConversionRoundTripsAndRejectsJunk)
{
    for (int round = 0; round < 200; ++round) {
        std::array<uint8_t, 64> raw{};
        bytes r = random_bytes(64);
        std::copy(r.begin(), r.end(), raw.begin());
        if (round % 4 == 0) {
            std::fill(raw.begin(), raw.begin() + round % 31, 0); // short r
        }
        std::array<uint8_t, 72> der{};
        const size_t n = ecdsa_raw_to_der(raw, der);
        std::array<uint8_t, 64> back{};
        ASSERT_TRUE(ecdsa_der_to_raw(std::span(der.data(), n), back));
        EXPECT_EQ(back, raw);
        EXPECT_FALSE(ecdsa_der_to_raw(std::span(der.data(), n - 1), back));
    }
}

TEST(srcauth_kat, KeysFromFilesAndBadPem)
{
    EXPECT_FALSE(signer::from_pem("not a key").ok());
    EXPECT_FALSE(sig_verifier::from_pem_file("/nonexistent/key.pem").ok());
    // An RSA key is refused (only Ed25519 and P-256).
    EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(1024));
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, rsa, nullptr, nullptr, 0, nullptr, nullptr);
    char* p = nullptr;
    const long n = BIO_get_mem_data(bio, &p);
    auto s = signer::from_pem(std::string_view(p, size_t(n)), "rsa.pem");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().detail.find("PRIVATE"), std::string::npos) << "error text must not carry the key";
    BIO_free(bio);
    EVP_PKEY_free(rsa);
}
