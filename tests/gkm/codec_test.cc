// lib/gkm codec: every payload we use round-trips; malformed input (truncated at every offset,
// bad lengths, unknown critical payloads, corrupted bytes) is rejected with a named reason.

#include <gtest/gtest.h>

#include "common/byte_order.hh"
#include "gkm/crypto.hh"
#include "gkm/message.hh"

using namespace msecgw;
using namespace msecgw::gkm;

namespace {

traffic_selector v4_range(const char* start_hex, const char* end_hex)
{
    return traffic_selector{7, 17, 0, 0xffff, from_hex(start_hex), from_hex(end_hex)};
}

std::vector<payload> every_payload()
{
    proposal ike{1, protocol_id::ike, {},
                 {transform::make(transform_type::encr, encr_aes_gcm_16, 256),
                  transform::make(transform_type::prf, prf_hmac_sha2_256),
                  transform::make(transform_type::ke, 19), transform::make(transform_type::kwa, kw_5649_256)}};
    proposal second = ike;
    second.number = 2;
    second.transforms[2].id = 31;

    gsa_policy tek;
    tek.type = gsa_policy_type::tek;
    tek.protocol = protocol_id::esp;
    tek.spi = from_hex("a5f80001");
    tek.source = v4_range("00000000", "ffffffff");
    tek.destination = v4_range("ef000001", "ef000001");
    tek.transforms = {transform::make(transform_type::encr, encr_aes_gcm_16, 128),
                      transform::make(transform_type::sn, sn_32bit_unspecified)};
    tek.attributes = {attribute::u32(uint16_t(gsa_attribute::key_lifetime), 3600)};
    gsa_policy gwp;
    gwp.type = gsa_policy_type::group_wide;
    gwp.protocol = protocol_id::none;
    gwp.attributes = {attribute::short_form(uint16_t(gwp_attribute::sender_id_bits), 16),
                      attribute::u32(uint16_t(gwp_attribute::atd), 5)};

    wrapped_key sa_key{0xa5f80001, 0, from_hex("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a")};
    kd_payload kd{{key_bag{key_bag_type::group, {attribute::long_form(uint16_t(group_key_attribute::sa_key),
                                                                      sa_key.encode())}},
                   key_bag{key_bag_type::member, {attribute::u32(uint16_t(member_key_attribute::gm_sender_id), 7)}}}};

    return {
        payload{payload_type::sa, false, sa_payload{{ike, second}}},
        payload{payload_type::ke, false, ke_payload{19, bytes(64, 0x42)}},
        payload{payload_type::nonce, false, nonce_payload{bytes(32, 0x17)}},
        payload{payload_type::idi, false, id_payload{id_type::key_id, from_hex("676d2d31")}},
        payload{payload_type::idr, false, id_payload{id_type::fqdn, from_hex("67636b73")}},
        payload{payload_type::idg, false, id_payload{id_type::key_id, from_hex("00000001")}},
        payload{payload_type::auth, false, auth_payload{auth_method::shared_key_mic, bytes(32, 0x99)}},
        payload{payload_type::notify, false, notify_payload{protocol_id::none, {}, notify_type::group_sender, {}}},
        payload{payload_type::notify, false,
                notify_payload{protocol_id::esp, from_hex("01020304"), notify_type::authorization_failed, {}}},
        payload{payload_type::del, false, delete_payload{protocol_id::esp, 4, {from_hex("a5f80001"), from_hex("a5f80002")}}},
        payload{payload_type::gsa, false, gsa_payload{{tek, gwp}}},
        payload{payload_type::kd, false, kd},
    };
}

message sample_message()
{
    message m;
    m.header = ike_header{0x1122334455667788ull, 0x99aabbccddeeff00ull, payload_type::none, ike_version_2,
                          exchange_type::gsa_auth, flag_initiator, 1, 0};
    m.payloads = every_payload();
    return m;
}

} // namespace

TEST(GkmCodec, EveryPayloadRoundTrips)
{
    const bytes wire = encode_message(sample_message());
    result<message> decoded = decode_message(wire);
    ASSERT_TRUE(decoded.ok()) << decoded.err().detail;
    EXPECT_EQ(decoded->header.exchange, exchange_type::gsa_auth);
    EXPECT_EQ(decoded->header.message_id, 1u);
    EXPECT_EQ(decoded->header.length, wire.size());
    ASSERT_EQ(decoded->payloads.size(), every_payload().size());
    // Re-encoding what was decoded gives the same bytes: nothing was lost or reordered.
    EXPECT_EQ(to_hex(encode_message(*decoded)), to_hex(wire));

    const auto* sa = find_payload<sa_payload>(decoded->payloads, payload_type::sa);
    ASSERT_NE(sa, nullptr);
    ASSERT_EQ(sa->proposals.size(), 2u);
    EXPECT_EQ(sa->proposals[0].find(transform_type::encr)->key_length_bits(), 256);
    EXPECT_EQ(sa->proposals[1].find(transform_type::ke)->id, 31);

    const auto* gsa = find_payload<gsa_payload>(decoded->payloads, payload_type::gsa);
    ASSERT_NE(gsa, nullptr);
    ASSERT_EQ(gsa->policies.size(), 2u);
    EXPECT_EQ(to_hex(gsa->policies[0].spi), "a5f80001");
    EXPECT_EQ(to_hex(gsa->policies[0].destination.start_address), "ef000001");
    EXPECT_EQ(*find_attribute(gsa->policies[1].attributes, uint16_t(gwp_attribute::sender_id_bits))->as_uint(), 16u);

    const auto* kd = find_payload<kd_payload>(decoded->payloads, payload_type::kd);
    ASSERT_NE(kd, nullptr);
    const attribute* sa_key = find_attribute(kd->bags[0].attributes, uint16_t(group_key_attribute::sa_key));
    ASSERT_NE(sa_key, nullptr);
    result<wrapped_key> wk = wrapped_key::decode(sa_key->value);
    ASSERT_TRUE(wk.ok());
    EXPECT_EQ(wk->key_id, 0xa5f80001u);
    EXPECT_EQ(wk->wrapped.size(), 32u);
    EXPECT_NE(find_notify(decoded->payloads, notify_type::authorization_failed), nullptr);
    EXPECT_EQ(find_error_notify(decoded->payloads)->type, notify_type::authorization_failed);
}

TEST(GkmCodec, TruncationAtEveryOffsetIsAnError)
{
    const bytes wire = encode_message(sample_message());
    for (size_t n = 0; n < wire.size(); ++n) {
        // As received: the header's length no longer matches.
        result<message> cut = decode_message(byte_view(wire).first(n));
        ASSERT_FALSE(cut.ok()) << "accepted a datagram cut to " << n << " bytes";
        // Length field patched to the cut size, so the payload walk itself meets the end.
        if (n >= ike_header_size) {
            bytes patched(wire.begin(), wire.begin() + long(n));
            store_be32(&patched[24], uint32_t(n));
            result<message> walk = decode_message(patched);
            if (n > ike_header_size) {
                ASSERT_FALSE(walk.ok()) << "accepted a payload chain cut to " << n << " bytes";
            }
        }
    }
}

TEST(GkmCodec, CorruptedBytesNeverCrash)
{
    const bytes wire = encode_message(sample_message());
    size_t rejected = 0;
    for (size_t i = ike_header_size; i < wire.size(); ++i) {
        for (uint8_t flip : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
            bytes bad = wire;
            bad[i] ^= flip;
            rejected += decode_message(bad).ok() ? 0 : 1;
        }
    }
    EXPECT_GT(rejected, 0u);  // the point is no crash or over-read (ASan/valgrind clean); many must fail
}

TEST(GkmCodec, NamedReasons)
{
    bytes wire = encode_message(sample_message());
    EXPECT_TRUE(has_reason(decode_message(byte_view(wire).first(20)).err(), reason::truncated));

    bytes v1 = wire;
    v1[17] = 0x10;
    EXPECT_TRUE(has_reason(decode_message(v1).err(), reason::bad_version));

    bytes longer = wire;
    longer.push_back(0);
    EXPECT_TRUE(has_reason(decode_message(longer).err(), reason::bad_header));

    // Unknown payload type 200 with the critical bit: refused; without it: kept opaque.
    message m = sample_message();
    m.payloads.push_back(payload{static_cast<payload_type>(200), true, opaque_payload{bytes(4, 1)}});
    EXPECT_TRUE(has_reason(decode_message(encode_message(m)).err(), reason::unsupported_critical));
    m.payloads.back().critical = false;
    EXPECT_TRUE(decode_message(encode_message(m)).ok());

    // A payload length below the generic header.
    bytes tiny = wire;
    store_be16(&tiny[ike_header_size + 2], 3);
    EXPECT_TRUE(has_reason(decode_message(tiny).err(), reason::bad_length));

    // A nonce of 8 bytes is below RFC 7296's minimum of 16.
    message short_nonce;
    short_nonce.payloads = {payload{payload_type::nonce, false, nonce_payload{bytes(8, 1)}}};
    EXPECT_TRUE(has_reason(decode_message(encode_message(short_nonce)).err(), reason::bad_length));
}

TEST(GkmCodec, SkPayloadSealsAndOpens)
{
    const secret key = random_secret(32 + gcm_salt_size);
    ike_header h{1, 2, payload_type::none, ike_version_2, exchange_type::gsa_auth, flag_initiator, 1, 0};
    const std::vector<payload> inner = every_payload();
    result<bytes> wire = seal_message(h, inner, key.view(), from_hex("0001020304050607"));
    ASSERT_TRUE(wire.ok()) << wire.err().detail;
    result<message> outer = decode_message(*wire);
    ASSERT_TRUE(outer.ok()) << outer.err().detail;
    ASSERT_EQ(outer->payloads.size(), 1u);
    EXPECT_EQ(outer->payloads[0].type, payload_type::sk);
    result<std::vector<payload>> opened = open_message(*outer, *wire, key.view());
    ASSERT_TRUE(opened.ok()) << opened.err().detail;
    ASSERT_EQ(opened->size(), inner.size());
    bytes a;
    bytes b;
    encode_payload_chain(a, inner);
    encode_payload_chain(b, *opened);
    EXPECT_EQ(to_hex(a), to_hex(b));

    // Any change to header, SK header or ciphertext fails the ICV.
    for (size_t i : {size_t(0), size_t(19), ike_header_size + 1, wire->size() - 1}) {
        bytes bad = *wire;
        bad[i] ^= 0x04;
        result<message> m = decode_message(bad);
        if (m.ok()) {
            EXPECT_TRUE(has_reason(open_message(*m, bad, key.view()).err(), reason::integrity)) << "offset " << i;
        }
    }
    // Truncated SK: every cut is rejected (by the header length or by the SK checks).
    for (size_t n = ike_header_size + 4; n < wire->size(); ++n) {
        bytes cut(wire->begin(), wire->begin() + long(n));
        store_be32(&cut[24], uint32_t(n));
        store_be16(&cut[ike_header_size + 2], uint16_t(n - ike_header_size));
        result<message> m = decode_message(cut);
        if (m.ok()) {
            ASSERT_FALSE(open_message(*m, cut, key.view()).ok()) << "cut " << n;
        }
    }
}
