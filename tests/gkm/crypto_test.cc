// Known answers for lib/gkm/crypto: RFC 4231 (HMAC-SHA-256 as PRF_HMAC_SHA2_256), prf+ (RFC 7296
// §2.13) against its definition, RFC 5649 §6 key wrap with padding, AES-GCM SK round trips, ECDH.

#include <gtest/gtest.h>

#include <string>

#include "gkm/crypto.hh"

using namespace msecgw;
using namespace msecgw::gkm;

namespace {

bytes repeat(uint8_t v, size_t n)
{
    return bytes(n, v);
}

bytes cat(byte_view a, byte_view b)
{
    bytes out(a.begin(), a.end());
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

struct hmac_case {
    bytes key;
    bytes data;
    std::string expected;
};

} // namespace

TEST(GkmPrf, Rfc4231HmacSha256)
{
    bytes key4;
    for (uint8_t i = 1; i <= 25; ++i) {
        key4.push_back(i);
    }
    const hmac_case cases[] = {
        {repeat(0x0b, 20), bytes(as_bytes("Hi There").begin(), as_bytes("Hi There").end()),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {bytes(as_bytes("Jefe").begin(), as_bytes("Jefe").end()),
         bytes(as_bytes("what do ya want for nothing?").begin(), as_bytes("what do ya want for nothing?").end()),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {repeat(0xaa, 20), repeat(0xdd, 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {key4, repeat(0xcd, 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {repeat(0xaa, 131),
         bytes(as_bytes("Test Using Larger Than Block-Size Key - Hash Key First").begin(),
               as_bytes("Test Using Larger Than Block-Size Key - Hash Key First").end()),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    for (const hmac_case& c : cases) {
        EXPECT_EQ(to_hex(prf(c.key, c.data).view()), c.expected);
    }
}

TEST(GkmPrf, PrfPlusFollowsItsDefinition)
{
    const bytes key = from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    const bytes seed(as_bytes("prf+ seed").begin(), as_bytes("prf+ seed").end());
    // T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02), T3 = prf(K, T2 | S | 0x03)
    bytes expected;
    bytes previous;
    for (uint8_t n = 1; n <= 3; ++n) {
        bytes input = cat(previous, seed);
        input.push_back(n);
        secret t = prf(key, input);
        previous.assign(t.view().begin(), t.view().end());
        expected.insert(expected.end(), previous.begin(), previous.end());
    }
    secret out = prf_plus(key, seed, 80);
    ASSERT_EQ(out.size(), 80u);
    EXPECT_EQ(to_hex(out.view()), to_hex(byte_view(expected).first(80)));
    // A shorter request is a prefix of the longer stream.
    EXPECT_EQ(to_hex(prf_plus(key, seed, 20).view()), to_hex(byte_view(expected).first(20)));
}

TEST(GkmKeyWrap, Rfc5649Section6)
{
    const bytes kek = from_hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
    const bytes key20 = from_hex("c37b7e6492584340bed12207808941155068f738");
    const bytes key7 = from_hex("466f7250617369");

    result<bytes> w20 = key_wrap(kek, key20);
    ASSERT_TRUE(w20.ok()) << w20.err().detail;
    EXPECT_EQ(to_hex(*w20), "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
    result<bytes> w7 = key_wrap(kek, key7);
    ASSERT_TRUE(w7.ok()) << w7.err().detail;
    EXPECT_EQ(to_hex(*w7), "afbeb0f07dfbf5419200f2ccb50bb24f");

    result<secret> u20 = key_unwrap(kek, *w20);
    ASSERT_TRUE(u20.ok()) << u20.err().detail;
    EXPECT_EQ(to_hex(u20->view()), to_hex(key20));
    result<secret> u7 = key_unwrap(kek, *w7);
    ASSERT_TRUE(u7.ok()) << u7.err().detail;
    EXPECT_EQ(to_hex(u7->view()), to_hex(key7));
}

TEST(GkmKeyWrap, TamperedOrMisframedInputIsRejected)
{
    const bytes kek = from_hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
    bytes wrapped = from_hex("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
    wrapped[5] ^= 1;
    result<secret> bad = key_unwrap(kek, wrapped);
    ASSERT_FALSE(bad.ok());
    EXPECT_TRUE(has_reason(bad.err(), reason::integrity)) << bad.err().detail;
    EXPECT_TRUE(has_reason(key_unwrap(kek, bytes(12, 0)).err(), reason::bad_length));
    EXPECT_TRUE(has_reason(key_wrap(bytes(15, 0), kek).err(), reason::unsupported));
}

TEST(GkmGcm, SealOpenRoundTripAndIcvCheck)
{
    const bytes key_and_salt = from_hex("feffe9928665731c6d6a8f9467308308cafebabe");
    const bytes iv = from_hex("facedbaddecaf888");
    const bytes aad = from_hex("0000a5f800000001");
    const bytes plain(as_bytes("G-IKEv2 SK payload").begin(), as_bytes("G-IKEv2 SK payload").end());
    result<bytes> sealed = gcm_seal(key_and_salt, iv, aad, plain);
    ASSERT_TRUE(sealed.ok()) << sealed.err().detail;
    ASSERT_EQ(sealed->size(), plain.size() + gcm_icv_size);
    result<secret> opened = gcm_open(key_and_salt, iv, aad, *sealed);
    ASSERT_TRUE(opened.ok()) << opened.err().detail;
    EXPECT_EQ(to_hex(opened->view()), to_hex(plain));

    bytes flipped = *sealed;
    flipped.back() ^= 0x80;
    EXPECT_TRUE(has_reason(gcm_open(key_and_salt, iv, aad, flipped).err(), reason::integrity));
    bytes other_aad = aad;
    other_aad[0] = 1;
    EXPECT_TRUE(has_reason(gcm_open(key_and_salt, iv, other_aad, *sealed).err(), reason::integrity));
    EXPECT_TRUE(has_reason(gcm_open(key_and_salt, iv, aad, bytes(15, 0)).err(), reason::truncated));
}

TEST(GkmGcm, McGrewViegaTestCase3)
{
    // GCM spec test case 3 (AES-128, 96-bit IV, no AAD), split as salt ‖ IV.
    const bytes key_and_salt = from_hex("feffe9928665731c6d6a8f9467308308cafebabe");
    const bytes iv = from_hex("facedbaddecaf888");
    const bytes plain = from_hex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
        "b16aedf5aa0de657ba637b391aafd255");
    result<bytes> sealed = gcm_seal(key_and_salt, iv, {}, plain);
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(to_hex(*sealed),
              "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa05"
              "1ba30b396a0aac973d58e091473f5985"
              "4d5c2af327cd64a62cf35abd2ba6fab4");
}

TEST(GkmEcdh, BothSidesAgreeForEachGroup)
{
    for (dh_group g : {dh_group::ecp256, dh_group::curve25519}) {
        result<ecdh_key> a = ecdh_key::generate(g);
        result<ecdh_key> b = ecdh_key::generate(g);
        ASSERT_TRUE(a.ok() && b.ok());
        EXPECT_EQ(a->public_value().size(), ke_data_size(g));
        result<secret> ab = a->shared_secret(b->public_value());
        result<secret> ba = b->shared_secret(a->public_value());
        ASSERT_TRUE(ab.ok()) << ab.err().detail;
        ASSERT_TRUE(ba.ok()) << ba.err().detail;
        EXPECT_EQ(ab->size(), 32u);
        EXPECT_TRUE(equal_constant_time(ab->view(), ba->view()));
    }
}

TEST(GkmEcdh, InvalidPeerValuesAreRejected)
{
    result<ecdh_key> p256 = ecdh_key::generate(dh_group::ecp256);
    ASSERT_TRUE(p256.ok());
    bytes off_curve = p256->public_value();
    off_curve[63] ^= 1;
    EXPECT_FALSE(p256->shared_secret(off_curve).ok());
    EXPECT_FALSE(p256->shared_secret(bytes(63, 1)).ok());

    result<ecdh_key> x = ecdh_key::generate(dh_group::curve25519);
    ASSERT_TRUE(x.ok());
    EXPECT_FALSE(x->shared_secret(bytes(32, 0)).ok());  // small-order point: all-zero output
    EXPECT_FALSE(x->shared_secret(bytes(31, 9)).ok());
    EXPECT_FALSE(ecdh_key::generate(static_cast<dh_group>(14)).ok());
}

TEST(GkmKeys, DerivationSplitsTheStreamInRfc7296Order)
{
    const bytes ni = repeat(0x11, 32);
    const bytes nr = repeat(0x22, 32);
    const bytes gir = repeat(0x33, 32);
    ike_sa_keys k = derive_ike_sa_keys(ni, nr, gir, 0x0102030405060708ull, 0x1112131415161718ull, 16);
    EXPECT_EQ(k.sk_d.size(), 32u);
    EXPECT_TRUE(k.sk_ai.empty());
    EXPECT_TRUE(k.sk_ar.empty());
    EXPECT_EQ(k.sk_ei.size(), 20u);
    EXPECT_EQ(k.sk_er.size(), 20u);
    EXPECT_EQ(k.sk_pi.size(), 32u);
    EXPECT_EQ(k.sk_pr.size(), 32u);

    bytes seed = cat(ni, nr);
    for (uint8_t b : from_hex("01020304050607081112131415161718")) {
        seed.push_back(b);
    }
    secret skeyseed = prf(cat(ni, nr), gir);
    secret stream = prf_plus(skeyseed.view(), seed, 32 + 20 + 20 + 32 + 32);
    EXPECT_EQ(to_hex(k.sk_d.view()), to_hex(stream.view().subspan(0, 32)));
    EXPECT_EQ(to_hex(k.sk_ei.view()), to_hex(stream.view().subspan(32, 20)));
    EXPECT_EQ(to_hex(k.sk_er.view()), to_hex(stream.view().subspan(52, 20)));
    EXPECT_EQ(to_hex(k.sk_pi.view()), to_hex(stream.view().subspan(72, 32)));
    EXPECT_EQ(to_hex(k.sk_pr.view()), to_hex(stream.view().subspan(104, 32)));
}

TEST(GkmBytes, SecretMovesAndCompares)
{
    secret a(from_hex("00112233"));
    secret b = std::move(a);
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(to_hex(b.view()), "00112233");
    EXPECT_TRUE(equal_constant_time(b.view(), from_hex("00112233")));
    EXPECT_FALSE(equal_constant_time(b.view(), from_hex("00112234")));
    EXPECT_FALSE(equal_constant_time(b.view(), from_hex("001122")));
    EXPECT_TRUE(from_hex("abc").empty());
}
