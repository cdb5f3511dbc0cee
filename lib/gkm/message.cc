#include "message.hh"

#include "crypto.hh"
#include "wire.hh"

namespace msecgw::gkm {

namespace {

constexpr size_t sk_header_size = 4;

void encode_header(bytes& out, const ike_header& h)
{
    wire_writer w(out);
    w.u64(h.spi_i);
    w.u64(h.spi_r);
    w.u8(static_cast<uint8_t>(h.next));
    w.u8(h.version);
    w.u8(static_cast<uint8_t>(h.exchange));
    w.u8(h.flags);
    w.u32(h.message_id);
    w.u32(0);
}

} // namespace

bytes encode_message(const message& m)
{
    bytes out;
    ike_header h = m.header;
    h.next = m.payloads.empty() ? payload_type::none : m.payloads.front().type;
    encode_header(out, h);
    encode_payload_chain(out, m.payloads);
    wire_writer(out).patch32(24, static_cast<uint32_t>(out.size()));
    return out;
}

result<message> decode_message(byte_view datagram)
{
    wire_reader r(datagram);
    message m;
    auto spi_i = r.u64();
    auto spi_r = r.u64();
    auto next = r.u8();
    auto version = r.u8();
    auto exchange = r.u8();
    auto flags = r.u8();
    auto message_id = r.u32();
    auto length = r.u32();
    if (!length) {
        return make_error(reason::truncated, "IKE header needs 28 bytes, have " + std::to_string(datagram.size()));
    }
    if ((*version >> 4) != 2) {
        return make_error(reason::bad_version, "IKE major version " + std::to_string(*version >> 4));
    }
    if (*length != datagram.size()) {
        return make_error(reason::bad_header, "IKE length " + std::to_string(*length) + " but datagram has " +
                                                  std::to_string(datagram.size()));
    }
    m.header = ike_header{*spi_i, *spi_r, static_cast<payload_type>(*next), *version,
                          static_cast<exchange_type>(*exchange), *flags, *message_id, *length};
    result<std::vector<payload>> chain = decode_payload_chain(m.header.next, r.rest());
    if (!chain) {
        return chain.err();
    }
    m.payloads = std::move(*chain);
    return m;
}

result<bytes> seal_message(const ike_header& header, std::span<const payload> inner, byte_view key_and_salt,
                           byte_view iv)
{
    bytes plain;
    encode_payload_chain(plain, inner);
    plain.push_back(0);  // Pad Length: GCM needs no padding (RFC 5282 §3)

    bytes out;
    ike_header h = header;
    h.next = payload_type::sk;
    encode_header(out, h);
    const size_t sk_start = out.size();
    const size_t total = sk_start + sk_header_size + gcm_iv_size + plain.size() + gcm_icv_size;
    if (total > max_message_size) {
        return make_error(reason::bad_length, "message too large");
    }
    wire_writer w(out);
    w.patch32(24, static_cast<uint32_t>(total));
    w.u8(inner.empty() ? 0 : static_cast<uint8_t>(inner.front().type));
    w.u8(0);
    w.u16(static_cast<uint16_t>(total - sk_start));
    result<bytes> sealed = gcm_seal(key_and_salt, iv, out, plain);
    if (!sealed) {
        return sealed.err();
    }
    w.put(iv);
    w.put(*sealed);
    return out;
}

result<std::vector<payload>> open_message(const message& m, byte_view datagram, byte_view key_and_salt)
{
    if (m.payloads.empty() || m.payloads.back().type != payload_type::sk) {
        return make_error(reason::missing_payload, "no SK payload");
    }
    const auto& sk = std::get<sk_payload>(m.payloads.back().body);
    if (sk.body.size() < gcm_iv_size + gcm_icv_size + 1) {
        return make_error(reason::truncated, "SK payload shorter than IV, pad length and ICV");
    }
    const size_t sk_header_end = datagram.size() - sk.body.size();
    byte_view aad = datagram.first(sk_header_end);
    byte_view iv = byte_view(sk.body).first(gcm_iv_size);
    byte_view sealed = byte_view(sk.body).subspan(gcm_iv_size);
    result<secret> plain = gcm_open(key_and_salt, iv, aad, sealed);
    if (!plain) {
        return plain.err();
    }
    const uint8_t pad_length = plain->view().back();
    if (size_t{pad_length} + 1 > plain->size()) {
        return make_error(reason::bad_length, "SK pad length exceeds the plaintext");
    }
    return decode_payload_chain(sk.first_inner, plain->view().first(plain->size() - 1 - pad_length));
}

std::string_view to_string(exchange_type e)
{
    switch (e) {
    case exchange_type::ike_sa_init: return "IKE_SA_INIT";
    case exchange_type::ike_auth: return "IKE_AUTH";
    case exchange_type::create_child_sa: return "CREATE_CHILD_SA";
    case exchange_type::informational: return "INFORMATIONAL";
    case exchange_type::gsa_auth: return "GSA_AUTH";
    case exchange_type::gsa_registration: return "GSA_REGISTRATION";
    case exchange_type::gsa_rekey: return "GSA_REKEY";
    case exchange_type::gsa_inband_rekey: return "GSA_INBAND_REKEY";
    }
    return "unknown exchange";
}

} // namespace msecgw::gkm
