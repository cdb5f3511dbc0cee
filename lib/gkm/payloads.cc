#include "payloads.hh"

#include <string>

#include "wire.hh"

namespace msecgw::gkm {

namespace {

constexpr size_t generic_header_size = 4;
constexpr uint8_t critical_flag = 0x80;
constexpr uint16_t attribute_tv_flag = 0x8000;
constexpr uint8_t more_substructures_proposal = 2;
constexpr uint8_t more_substructures_transform = 3;
constexpr size_t min_nonce = 16;
constexpr size_t max_nonce = 256;

// ---- encode -------------------------------------------------------------------------------

void encode_attributes(wire_writer& w, const std::vector<attribute>& attrs)
{
    for (const attribute& a : attrs) {
        if (a.tv) {
            w.u16(static_cast<uint16_t>(attribute_tv_flag | a.type));
            w.put(a.value);
        } else {
            w.u16(a.type);
            w.u16(static_cast<uint16_t>(a.value.size()));
            w.put(a.value);
        }
    }
}

void encode_transforms(wire_writer& w, const std::vector<transform>& transforms)
{
    for (size_t i = 0; i < transforms.size(); ++i) {
        const transform& t = transforms[i];
        const size_t start = w.size();
        w.u8(i + 1 < transforms.size() ? more_substructures_transform : 0);
        w.u8(0);
        w.u16(0);
        w.u8(static_cast<uint8_t>(t.type));
        w.u8(0);
        w.u16(t.id);
        encode_attributes(w, t.attributes);
        w.patch_length16(start + 2, start);
    }
}

void encode_body(wire_writer& w, const sa_payload& sa)
{
    for (size_t i = 0; i < sa.proposals.size(); ++i) {
        const proposal& p = sa.proposals[i];
        const size_t start = w.size();
        w.u8(i + 1 < sa.proposals.size() ? more_substructures_proposal : 0);
        w.u8(0);
        w.u16(0);
        w.u8(p.number);
        w.u8(static_cast<uint8_t>(p.protocol));
        w.u8(static_cast<uint8_t>(p.spi.size()));
        w.u8(static_cast<uint8_t>(p.transforms.size()));
        w.put(p.spi);
        encode_transforms(w, p.transforms);
        w.patch_length16(start + 2, start);
    }
}

void encode_body(wire_writer& w, const ke_payload& ke)
{
    w.u16(ke.group);
    w.u16(0);
    w.put(ke.data);
}

void encode_body(wire_writer& w, const nonce_payload& n)
{
    w.put(n.data);
}

void encode_body(wire_writer& w, const id_payload& id)
{
    w.u8(static_cast<uint8_t>(id.type));
    w.u8(0);
    w.u16(0);
    w.put(id.data);
}

void encode_body(wire_writer& w, const auth_payload& a)
{
    w.u8(static_cast<uint8_t>(a.method));
    w.u8(0);
    w.u16(0);
    w.put(a.data);
}

void encode_body(wire_writer& w, const notify_payload& n)
{
    w.u8(static_cast<uint8_t>(n.protocol));
    w.u8(static_cast<uint8_t>(n.spi.size()));
    w.u16(static_cast<uint16_t>(n.type));
    w.put(n.spi);
    w.put(n.data);
}

void encode_body(wire_writer& w, const delete_payload& d)
{
    w.u8(static_cast<uint8_t>(d.protocol));
    w.u8(d.spi_size);
    w.u16(static_cast<uint16_t>(d.spis.size()));
    for (const bytes& spi : d.spis) {
        w.put(spi);
    }
}

void encode_selector(wire_writer& w, const traffic_selector& ts)
{
    const size_t start = w.size();
    w.u8(ts.ts_type);
    w.u8(ts.ip_protocol);
    w.u16(0);
    w.u16(ts.start_port);
    w.u16(ts.end_port);
    w.put(ts.start_address);
    w.put(ts.end_address);
    w.patch_length16(start + 2, start);
}

void encode_body(wire_writer& w, const gsa_payload& gsa)
{
    for (const gsa_policy& p : gsa.policies) {
        const size_t start = w.size();
        w.u8(static_cast<uint8_t>(p.type));
        w.u8(0);
        w.u16(0);
        w.u8(static_cast<uint8_t>(p.protocol));
        w.u8(static_cast<uint8_t>(p.spi.size()));
        w.u16(0);
        w.put(p.spi);
        if (p.type == gsa_policy_type::tek) {
            encode_selector(w, p.source);
            encode_selector(w, p.destination);
        }
        if (p.type != gsa_policy_type::group_wide) {
            encode_transforms(w, p.transforms);
        }
        encode_attributes(w, p.attributes);
        w.patch_length16(start + 2, start);
    }
}

void encode_body(wire_writer& w, const kd_payload& kd)
{
    for (const key_bag& bag : kd.bags) {
        const size_t start = w.size();
        w.u8(static_cast<uint8_t>(bag.type));
        w.u8(0);
        w.u16(0);
        encode_attributes(w, bag.attributes);
        w.patch_length16(start + 2, start);
    }
}

void encode_body(wire_writer& w, const sk_payload& sk)
{
    w.put(sk.body);
}

void encode_body(wire_writer& w, const opaque_payload& o)
{
    w.put(o.body);
}

// ---- decode -------------------------------------------------------------------------------

error short_by(std::string_view what, size_t at)
{
    return make_error(reason::truncated, std::string(what) + " at offset " + std::to_string(at));
}

result<std::vector<attribute>> decode_attributes(byte_view data, std::string_view where)
{
    std::vector<attribute> out;
    wire_reader r(data);
    while (!r.at_end()) {
        auto head = r.u16();
        if (!head) {
            return make_error(reason::bad_attribute, std::string(where) + ": attribute header cut short");
        }
        attribute a;
        a.type = static_cast<uint16_t>(*head & ~attribute_tv_flag);
        a.tv = (*head & attribute_tv_flag) != 0;
        auto length = a.tv ? std::optional<uint16_t>(2) : r.u16();
        auto value = length ? r.take(*length) : std::nullopt;
        if (!value) {
            return make_error(reason::bad_attribute, std::string(where) + ": attribute value runs past its end");
        }
        a.value.assign(value->begin(), value->end());
        out.push_back(std::move(a));
    }
    return out;
}

/// Reads transform substructures until one says it is the last (or count are read).
result<std::vector<transform>> decode_transforms(wire_reader& r, std::optional<size_t> count)
{
    std::vector<transform> out;
    for (;;) {
        if (count && out.size() == *count) {
            return out;
        }
        auto last = r.u8();
        auto reserved = r.u8();
        auto length = r.u16();
        if (!last || !reserved || !length) {
            return short_by("transform header", r.offset());
        }
        if ((*last != 0 && *last != more_substructures_transform) || *length < 8) {
            return make_error(reason::bad_substructure, "transform framing at offset " + std::to_string(r.offset()));
        }
        auto body = r.take(*length - 4u);
        if (!body) {
            return short_by("transform", r.offset());
        }
        wire_reader b(*body);
        transform t;
        t.type = static_cast<transform_type>(*b.u8());
        b.u8();
        t.id = *b.u16();
        result<std::vector<attribute>> attrs = decode_attributes(b.rest(), "transform");
        if (!attrs) {
            return attrs.err();
        }
        t.attributes = std::move(*attrs);
        out.push_back(std::move(t));
        if (*last == 0) {
            if (count && out.size() != *count) {
                return make_error(reason::bad_substructure, "proposal transform count mismatch");
            }
            return out;
        }
    }
}

result<payload_body> decode_sa(byte_view data)
{
    sa_payload sa;
    wire_reader r(data);
    for (bool more = true; more;) {
        auto last = r.u8();
        auto reserved = r.u8();
        auto length = r.u16();
        if (!last || !reserved || !length) {
            return short_by("proposal header", r.offset());
        }
        if ((*last != 0 && *last != more_substructures_proposal) || *length < 8) {
            return make_error(reason::bad_substructure, "proposal framing");
        }
        more = *last == more_substructures_proposal;
        auto body = r.take(*length - 4u);
        if (!body) {
            return short_by("proposal", r.offset());
        }
        wire_reader b(*body);
        proposal p;
        p.number = *b.u8();
        p.protocol = static_cast<protocol_id>(*b.u8());
        const uint8_t spi_size = *b.u8();
        const uint8_t count = *b.u8();
        auto spi = b.take(spi_size);
        if (!spi) {
            return short_by("proposal SPI", r.offset());
        }
        p.spi.assign(spi->begin(), spi->end());
        result<std::vector<transform>> t = decode_transforms(b, count);
        if (!t) {
            return t.err();
        }
        if (!b.at_end()) {
            return make_error(reason::bad_substructure, "proposal length exceeds its transforms");
        }
        p.transforms = std::move(*t);
        sa.proposals.push_back(std::move(p));
    }
    if (!r.at_end()) {
        return make_error(reason::bad_substructure, "bytes after the last proposal");
    }
    return payload_body(std::move(sa));
}

/// Reads the 4-byte head shared by KE, ID and AUTH (a byte or 16-bit field, then reserved).
result<payload_body> decode_ke(byte_view data)
{
    wire_reader r(data);
    auto group = r.u16();
    auto reserved = r.u16();
    if (!group || !reserved || r.at_end()) {
        return short_by("KE payload", 0);
    }
    byte_view rest = r.rest();
    return payload_body(ke_payload{*group, bytes(rest.begin(), rest.end())});
}

result<payload_body> decode_nonce(byte_view data)
{
    if (data.size() < min_nonce || data.size() > max_nonce) {
        return make_error(reason::bad_length, "nonce of " + std::to_string(data.size()) + " bytes");
    }
    return payload_body(nonce_payload{bytes(data.begin(), data.end())});
}

result<payload_body> decode_id(byte_view data)
{
    if (data.size() < 5) {
        return short_by("ID payload", 0);
    }
    return payload_body(id_payload{static_cast<id_type>(data[0]), bytes(data.begin() + 4, data.end())});
}

result<payload_body> decode_auth(byte_view data)
{
    if (data.size() < 5) {
        return short_by("AUTH payload", 0);
    }
    return payload_body(auth_payload{static_cast<auth_method>(data[0]), bytes(data.begin() + 4, data.end())});
}

result<payload_body> decode_notify(byte_view data)
{
    wire_reader r(data);
    auto protocol = r.u8();
    auto spi_size = r.u8();
    auto type = r.u16();
    auto spi = spi_size ? r.take(*spi_size) : std::nullopt;
    if (!protocol || !type || !spi) {
        return short_by("Notify payload", 0);
    }
    byte_view rest = r.rest();
    return payload_body(notify_payload{static_cast<protocol_id>(*protocol), bytes(spi->begin(), spi->end()),
                                       static_cast<notify_type>(*type), bytes(rest.begin(), rest.end())});
}

result<payload_body> decode_delete(byte_view data)
{
    wire_reader r(data);
    auto protocol = r.u8();
    auto spi_size = r.u8();
    auto count = r.u16();
    if (!protocol || !spi_size || !count) {
        return short_by("Delete payload", 0);
    }
    if (r.remaining() != size_t{*spi_size} * *count) {
        return make_error(reason::bad_length, "Delete payload SPI count does not match its length");
    }
    delete_payload d{static_cast<protocol_id>(*protocol), *spi_size, {}};
    for (uint16_t i = 0; i < *count; ++i) {
        byte_view spi = *r.take(*spi_size);
        d.spis.emplace_back(spi.begin(), spi.end());
    }
    return payload_body(std::move(d));
}

result<traffic_selector> decode_selector(wire_reader& r)
{
    auto type = r.u8();
    auto protocol = r.u8();
    auto length = r.u16();
    if (!type || !protocol || !length) {
        return short_by("traffic selector", r.offset());
    }
    const size_t address = *type == 7 ? 4 : *type == 8 ? 16 : 0;
    if (address == 0) {
        return make_error(reason::bad_substructure, "traffic selector type " + std::to_string(*type));
    }
    if (*length != 8 + 2 * address) {
        return make_error(reason::bad_length, "traffic selector length " + std::to_string(*length));
    }
    traffic_selector ts;
    ts.ts_type = *type;
    ts.ip_protocol = *protocol;
    auto start_port = r.u16();
    auto end_port = r.u16();
    auto start = r.take(address);
    auto end = r.take(address);
    if (!start_port || !end_port || !start || !end) {
        return short_by("traffic selector", r.offset());
    }
    ts.start_port = *start_port;
    ts.end_port = *end_port;
    ts.start_address.assign(start->begin(), start->end());
    ts.end_address.assign(end->begin(), end->end());
    return ts;
}

result<gsa_policy> decode_policy_body(gsa_policy_type type, byte_view body)
{
    wire_reader r(body);
    gsa_policy p;
    p.type = type;
    auto protocol = r.u8();
    auto spi_size = r.u8();
    auto reserved = r.u16();
    auto spi = spi_size ? r.take(*spi_size) : std::nullopt;
    if (!protocol || !reserved || !spi) {
        return short_by("GSA policy", 0);
    }
    p.protocol = static_cast<protocol_id>(*protocol);
    p.spi.assign(spi->begin(), spi->end());
    if (type == gsa_policy_type::tek) {
        result<traffic_selector> src = decode_selector(r);
        if (!src) {
            return src.err();
        }
        result<traffic_selector> dst = decode_selector(r);
        if (!dst) {
            return dst.err();
        }
        p.source = std::move(*src);
        p.destination = std::move(*dst);
    }
    if (type != gsa_policy_type::group_wide) {
        result<std::vector<transform>> t = decode_transforms(r, std::nullopt);
        if (!t) {
            return t.err();
        }
        p.transforms = std::move(*t);
    }
    result<std::vector<attribute>> attrs = decode_attributes(r.rest(), "GSA policy");
    if (!attrs) {
        return attrs.err();
    }
    p.attributes = std::move(*attrs);
    return p;
}

/// Splits a run of Type(1) RESERVED(1) Length(2) substructures and hands each body to parse.
template <class Parse>
result<void> for_each_substructure(byte_view data, std::string_view what, Parse&& parse)
{
    wire_reader r(data);
    if (r.at_end()) {
        return make_error(reason::bad_length, std::string(what) + " is empty");
    }
    while (!r.at_end()) {
        auto type = r.u8();
        auto reserved = r.u8();
        auto length = r.u16();
        if (!type || !reserved || !length) {
            return short_by(what, r.offset());
        }
        if (*length < 4) {
            return make_error(reason::bad_substructure, std::string(what) + " length below its header");
        }
        auto body = r.take(*length - 4u);
        if (!body) {
            return short_by(what, r.offset());
        }
        result<void> done = parse(*type, *body);
        if (!done) {
            return done;
        }
    }
    return {};
}

result<payload_body> decode_gsa(byte_view data)
{
    gsa_payload gsa;
    result<void> done = for_each_substructure(data, "GSA policy", [&](uint8_t type, byte_view body) -> result<void> {
        if (type < 1 || type > 3) {
            return make_error(reason::bad_substructure, "GSA policy type " + std::to_string(type));
        }
        result<gsa_policy> p = decode_policy_body(static_cast<gsa_policy_type>(type), body);
        if (!p) {
            return p.err();
        }
        gsa.policies.push_back(std::move(*p));
        return {};
    });
    if (!done) {
        return done.err();
    }
    return payload_body(std::move(gsa));
}

result<payload_body> decode_kd(byte_view data)
{
    kd_payload kd;
    result<void> done = for_each_substructure(data, "key bag", [&](uint8_t type, byte_view body) -> result<void> {
        if (type < 1 || type > 2) {
            return make_error(reason::bad_substructure, "key bag type " + std::to_string(type));
        }
        result<std::vector<attribute>> attrs = decode_attributes(body, "key bag");
        if (!attrs) {
            return attrs.err();
        }
        kd.bags.push_back(key_bag{static_cast<key_bag_type>(type), std::move(*attrs)});
        return {};
    });
    if (!done) {
        return done.err();
    }
    return payload_body(std::move(kd));
}

result<payload_body> decode_body(payload_type type, byte_view data, uint8_t next)
{
    switch (type) {
    case payload_type::sa: return decode_sa(data);
    case payload_type::ke: return decode_ke(data);
    case payload_type::nonce: return decode_nonce(data);
    case payload_type::idi:
    case payload_type::idr:
    case payload_type::idg: return decode_id(data);
    case payload_type::auth: return decode_auth(data);
    case payload_type::notify: return decode_notify(data);
    case payload_type::del: return decode_delete(data);
    case payload_type::gsa: return decode_gsa(data);
    case payload_type::kd: return decode_kd(data);
    case payload_type::sk: return payload_body(sk_payload{static_cast<payload_type>(next), bytes(data.begin(), data.end())});
    default: return payload_body(opaque_payload{bytes(data.begin(), data.end())});
    }
}

bool is_known(uint8_t type)
{
    return (type >= 33 && type <= 43) || type == 46 || (type >= 50 && type <= 52);
}

} // namespace

attribute attribute::short_form(uint16_t type, uint16_t value)
{
    return attribute{type, bytes{static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)}, true};
}

attribute attribute::long_form(uint16_t type, byte_view value)
{
    return attribute{type, bytes(value.begin(), value.end()), false};
}

attribute attribute::u32(uint16_t type, uint32_t value)
{
    bytes v;
    wire_writer(v).u32(value);
    return attribute{type, std::move(v), false};
}

std::optional<uint64_t> attribute::as_uint() const
{
    if (value.empty() || value.size() > 8) {
        return std::nullopt;
    }
    uint64_t v = 0;
    for (uint8_t b : value) {
        v = v << 8 | b;
    }
    return v;
}

const attribute* find_attribute(const std::vector<attribute>& attrs, uint16_t type)
{
    for (const attribute& a : attrs) {
        if (a.type == type) {
            return &a;
        }
    }
    return nullptr;
}

std::optional<uint16_t> transform::key_length_bits() const
{
    const attribute* a = find_attribute(attributes, attr_key_length);
    if (a == nullptr || !a->tv) {
        return std::nullopt;
    }
    return static_cast<uint16_t>(*a->as_uint());
}

transform transform::make(transform_type type, uint16_t id, std::optional<uint16_t> key_bits)
{
    transform t{type, id, {}};
    if (key_bits) {
        t.attributes.push_back(attribute::short_form(attr_key_length, *key_bits));
    }
    return t;
}

const transform* proposal::find(transform_type type) const
{
    for (const transform& t : transforms) {
        if (t.type == type) {
            return &t;
        }
    }
    return nullptr;
}

bytes wrapped_key::encode() const
{
    bytes out;
    wire_writer w(out);
    w.u32(key_id);
    w.u32(kwk_id);
    w.put(wrapped);
    return out;
}

result<wrapped_key> wrapped_key::decode(byte_view value)
{
    wire_reader r(value);
    auto key_id = r.u32();
    auto kwk_id = r.u32();
    if (!key_id || !kwk_id || r.at_end()) {
        return make_error(reason::bad_attribute, "wrapped key shorter than its header");
    }
    byte_view rest = r.rest();
    return wrapped_key{*key_id, *kwk_id, bytes(rest.begin(), rest.end())};
}

void encode_payload_chain(bytes& out, std::span<const payload> payloads)
{
    wire_writer w(out);
    for (size_t i = 0; i < payloads.size(); ++i) {
        const payload& p = payloads[i];
        uint8_t next = 0;
        if (const auto* sk = std::get_if<sk_payload>(&p.body)) {
            next = static_cast<uint8_t>(sk->first_inner);
        } else if (i + 1 < payloads.size()) {
            next = static_cast<uint8_t>(payloads[i + 1].type);
        }
        const size_t start = w.size();
        w.u8(next);
        w.u8(p.critical ? critical_flag : 0);
        w.u16(0);
        std::visit([&](const auto& body) { encode_body(w, body); }, p.body);
        w.patch_length16(start + 2, start);
    }
}

result<std::vector<payload>> decode_payload_chain(payload_type first, byte_view data)
{
    std::vector<payload> out;
    wire_reader r(data);
    uint8_t type = static_cast<uint8_t>(first);
    while (type != 0) {
        const size_t at = r.offset();
        auto next = r.u8();
        auto flags = r.u8();
        auto length = r.u16();
        if (!next || !flags || !length) {
            return short_by("payload header", at);
        }
        if (*length < generic_header_size) {
            return make_error(reason::bad_length, "payload length " + std::to_string(*length) + " at offset " +
                                                      std::to_string(at));
        }
        auto body = r.take(*length - generic_header_size);
        if (!body) {
            return short_by("payload body", at);
        }
        const bool critical = (*flags & critical_flag) != 0;
        if (!is_known(type) && critical) {
            return make_error(reason::unsupported_critical, "payload type " + std::to_string(type));
        }
        result<payload_body> decoded = decode_body(static_cast<payload_type>(type), *body, *next);
        if (!decoded) {
            return decoded.err();
        }
        out.push_back(payload{static_cast<payload_type>(type), critical, std::move(*decoded)});
        if (type == static_cast<uint8_t>(payload_type::sk)) {
            break;  // SK's Next Payload names its first inner payload; SK must be last
        }
        type = *next;
    }
    if (!r.at_end()) {
        return make_error(reason::bad_length, "bytes after the last payload");
    }
    return out;
}

const notify_payload* find_notify(const std::vector<payload>& payloads, notify_type type)
{
    for (const payload& p : payloads) {
        const auto* n = std::get_if<notify_payload>(&p.body);
        if (n != nullptr && n->type == type) {
            return n;
        }
    }
    return nullptr;
}

const notify_payload* find_error_notify(const std::vector<payload>& payloads)
{
    for (const payload& p : payloads) {
        const auto* n = std::get_if<notify_payload>(&p.body);
        if (n != nullptr && static_cast<uint16_t>(n->type) < notify_error_limit) {
            return n;
        }
    }
    return nullptr;
}

} // namespace msecgw::gkm
