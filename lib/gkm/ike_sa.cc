#include "ike_sa.hh"

#include "registration.hh"
#include "wire.hh"

namespace msecgw::gkm {

namespace {

constexpr std::string_view key_pad = "Key Pad for IKEv2";
constexpr std::string_view wrap_label = "Key Wrap for G-IKEv2";

bytes id_body(const id_payload& id)
{
    bytes out{static_cast<uint8_t>(id.type), 0, 0, 0};
    out.insert(out.end(), id.data.begin(), id.data.end());
    return out;
}

std::string hex64(uint64_t v)
{
    bytes b;
    wire_writer(b).u64(v);
    return to_hex(b);
}

} // namespace

proposal make_ike_proposal(dh_group group)
{
    return proposal{1, protocol_id::ike, {},
                    {transform::make(transform_type::encr, encr_aes_gcm_16, ike_encr_key_size * 8),
                     transform::make(transform_type::prf, prf_hmac_sha2_256),
                     transform::make(transform_type::ke, static_cast<uint16_t>(group)),
                     transform::make(transform_type::kwa, kw_5649_256)}};
}

message ike_sa_init_request(uint64_t spi_i, dh_group group, const bytes& public_value, const bytes& nonce_i,
                            const bytes& cookie)
{
    message m{ike_header{spi_i, 0, payload_type::none, ike_version_2, exchange_type::ike_sa_init, flag_initiator, 0, 0},
              {payload{payload_type::sa, false, sa_payload{{make_ike_proposal(group)}}},
               payload{payload_type::ke, false, ke_payload{static_cast<uint16_t>(group), public_value}},
               payload{payload_type::nonce, false, nonce_payload{nonce_i}}}};
    if (!cookie.empty()) {
        payload c = notify(notify_type::cookie);
        std::get<notify_payload>(c.body).data = cookie;
        m.payloads.insert(m.payloads.begin(), std::move(c));
    }
    return m;
}

std::optional<proposal> choose_ike_proposal(const sa_payload& offered, dh_group ke_group)
{
    if (!is_supported(ke_group)) {
        return std::nullopt;
    }
    const proposal ours = make_ike_proposal(ke_group);
    for (const proposal& p : offered.proposals) {
        if (p.protocol != protocol_id::ike || !p.spi.empty()) {
            continue;
        }
        bool all = true;
        for (const transform& want : ours.transforms) {
            bool found = false;
            for (const transform& t : p.transforms) {
                found = found || (t.type == want.type && t.id == want.id &&
                                  t.key_length_bits() == want.key_length_bits());
            }
            all = all && found;
        }
        if (all) {
            proposal chosen = ours;
            chosen.number = p.number;
            return chosen;
        }
    }
    return std::nullopt;
}

ike_sa::ike_sa(ike_role role, ike_init_exchange init, ike_sa_keys keys)
    : _role(role), _init(std::move(init)), _keys(std::move(keys)),
      _wrap_key(prf_plus(_keys.sk_d.view(), as_bytes(wrap_label), wrap_key_size))
{
}

result<bytes> ike_sa::seal(exchange_type exchange, uint32_t message_id, bool response, std::span<const payload> inner)
{
    ike_header h;
    h.spi_i = _init.spi_i;
    h.spi_r = _init.spi_r;
    h.exchange = exchange;
    h.message_id = message_id;
    h.flags = static_cast<uint8_t>((_role == ike_role::initiator ? flag_initiator : 0) | (response ? flag_response : 0));
    bytes iv;
    wire_writer(iv).u64(_next_iv++);
    const secret& key = _role == ike_role::initiator ? _keys.sk_ei : _keys.sk_er;
    return seal_message(h, inner, key.view(), iv);
}

result<std::vector<payload>> ike_sa::open(const message& m, byte_view datagram) const
{
    const secret& key = _role == ike_role::initiator ? _keys.sk_er : _keys.sk_ei;
    return open_message(m, datagram, key.view());
}

bytes ike_sa::signed_octets(ike_role who, const id_payload& id) const
{
    const bool initiator = who == ike_role::initiator;
    bytes octets = initiator ? _init.request : _init.response;
    const bytes& peer_nonce = initiator ? _init.nonce_r : _init.nonce_i;
    octets.insert(octets.end(), peer_nonce.begin(), peer_nonce.end());
    secret maced_id = prf((initiator ? _keys.sk_pi : _keys.sk_pr).view(), id_body(id));
    octets.insert(octets.end(), maced_id.view().begin(), maced_id.view().end());
    return octets;
}

secret ike_sa::psk_auth(byte_view psk, ike_role who, const id_payload& id) const
{
    secret padded = prf(psk, as_bytes(key_pad));
    return prf(padded.view(), signed_octets(who, id));
}

std::string ike_sa::wireshark_keylog_record() const
{
    // UAT syntax: hex-bytes fields bare, enum fields quoted; SK_ai/SK_ar empty (AEAD).
    return hex64(_init.spi_i) + "," + hex64(_init.spi_r) + "," + to_hex(_keys.sk_ei.view()) + "," +
           to_hex(_keys.sk_er.view()) + ",\"AES-GCM-256 with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\"";
}

} // namespace msecgw::gkm
