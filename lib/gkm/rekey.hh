#pragma once
/// GSA_REKEY framing shared by the GCKS and members (internal header).
///
/// HDR(SPIi ‖ SPIr = the KEK policy's 16-byte SPI, GSA_REKEY, Message ID), SK{GSA, KD, AUTH} under
/// the KEK (AES-256-GCM key ‖ salt). AUTH is Digital Signature (RFC 7427: ASN.1 length,
/// ecdsa-with-SHA256 AlgorithmIdentifier, DER signature) over the header without its length field
/// followed by the encoded GSA and KD payloads. TEKs in the KD are wrapped under the KEK's key
/// (KWK ID 1).

#include "crypto.hh"
#include "message.hh"

namespace msecgw::gkm {

inline constexpr size_t kek_key_size = 32;
inline constexpr uint32_t kwk_id_kek = 1;
/// KEK policy attribute (private use): the IPv4 multicast address (4) and UDP port (2) the GCKS
/// sends GSA_REKEY to; members join it.
inline constexpr uint16_t rekey_address_attribute = 16386;

/// RFC 7427 AlgorithmIdentifier for ecdsa-with-SHA256, preceded by its length.
inline constexpr uint8_t ecdsa_sha256_prefix[] = {0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                                  0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

/// The bytes the GCKS signs.
inline bytes rekey_signed_octets(const ike_header& h, std::span<const payload> signed_payloads)
{
    bytes out;
    ike_header copy = h;
    copy.length = 0;
    message m{copy, {}};
    out = encode_message(m);
    out.resize(24);  // drop the length field
    encode_payload_chain(out, signed_payloads);
    return out;
}

/// One GSA_REKEY datagram: HDR(kek_spi, message_id), SK{inner, AUTH} with AUTH signed by signer,
/// sealed under kek (key ‖ salt) with the Message ID as IV (unique per KEK).
result<bytes> seal_rekey(const signing_key& signer, byte_view kek_spi, uint32_t message_id, std::vector<payload> inner,
                         byte_view kek);

} // namespace msecgw::gkm
