#include "rekey.hh"
#include "wire.hh"

namespace msecgw::gkm {

result<bytes> seal_rekey(const signing_key& signer, byte_view kek_spi, uint32_t message_id, std::vector<payload> inner,
                         byte_view kek)
{
    wire_reader spi(kek_spi);
    const uint64_t spi_i = spi.u64().value_or(0);
    const uint64_t spi_r = spi.u64().value_or(0);
    const ike_header h{spi_i, spi_r, payload_type::none, ike_version_2, exchange_type::gsa_rekey, flag_initiator, message_id, 0};
    result<bytes> signature = signer.sign(rekey_signed_octets(h, inner));
    if (!signature) {
        return signature.err();
    }
    bytes auth_data(std::begin(ecdsa_sha256_prefix), std::end(ecdsa_sha256_prefix));
    auth_data.insert(auth_data.end(), signature->begin(), signature->end());
    inner.push_back(payload{payload_type::auth, false, auth_payload{auth_method::digital_signature, std::move(auth_data)}});
    bytes iv;
    wire_writer(iv).u64(h.message_id);  // unique per KEK: Message IDs never repeat
    return seal_message(h, inner, kek, iv);
}

} // namespace msecgw::gkm
