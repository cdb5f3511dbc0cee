// LKH key arrays as RFC 9838 KD payloads (Member Key Bag, WRAP_KEY attributes).
#include <string>

#include "lkh.hh"
#include "wire.hh"

namespace msecgw::gkm {

namespace {

constexpr size_t payload_header_bytes = 4;
constexpr size_t key_bag_header_bytes = 4;
constexpr size_t attribute_header_bytes = 4;
constexpr size_t part_value_bytes = 8;
constexpr size_t part_overhead = payload_header_bytes + key_bag_header_bytes + attribute_header_bytes + part_value_bytes;

size_t encoded_size(const wrapped_key& wk)
{
    return attribute_header_bytes + 8 + wk.wrapped.size();
}

attribute part_attribute(uint32_t epoch, uint16_t index, uint16_t count)
{
    bytes value;
    wire_writer w(value);
    w.u32(epoch);
    w.u16(index);
    w.u16(count);
    return attribute::long_form(lkh_part_attribute, value);
}

attribute wrap_key_attribute(const wrapped_key& wk)
{
    return attribute::long_form(uint16_t(member_key_attribute::wrap_key), wk.encode());
}

struct decoded_part {
    uint32_t epoch = 0;
    uint16_t index = 0;
    uint16_t count = 0;
    std::vector<wrapped_key> keys;
};

result<decoded_part> decode_part(byte_view data)
{
    result<std::vector<payload>> chain = decode_payload_chain(payload_type::kd, data);
    if (!chain) {
        return chain.err();
    }
    if (chain->size() != 1) {
        return make_error(reason::unexpected_payload, "LKH part: one KD payload expected");
    }
    const auto& kd = std::get<kd_payload>(chain->front().body);
    if (kd.bags.size() != 1 || kd.bags.front().type != key_bag_type::member || kd.bags.front().attributes.empty()) {
        return make_error(reason::bad_substructure, "LKH part: one Member Key Bag expected");
    }
    const std::vector<attribute>& attrs = kd.bags.front().attributes;
    const attribute& head = attrs.front();
    wire_reader r(head.value);
    auto epoch = r.u32();
    auto index = r.u16();
    auto count = r.u16();
    if (head.type != lkh_part_attribute || head.tv || !epoch || !index || !count || !r.at_end() || *index >= *count) {
        return make_error(reason::bad_attribute, "LKH part attribute");
    }
    decoded_part part{*epoch, *index, *count, {}};
    for (size_t i = 1; i < attrs.size(); ++i) {
        if (attrs[i].type != uint16_t(member_key_attribute::wrap_key) || attrs[i].tv) {
            return make_error(reason::unexpected_payload, "LKH part: attribute " + std::to_string(attrs[i].type));
        }
        result<wrapped_key> wk = wrapped_key::decode(attrs[i].value);
        if (!wk) {
            return wk.err();
        }
        part.keys.push_back(std::move(*wk));
    }
    return part;
}

} // namespace

result<std::vector<bytes>> encode_lkh_rekey(const lkh_rekey& rekey, size_t max_part_bytes)
{
    // Greedy split: where each part starts in the key array.
    std::vector<size_t> starts{0};
    size_t used = part_overhead;
    for (size_t i = 0; i < rekey.keys.size(); ++i) {
        const size_t need = encoded_size(rekey.keys[i]);
        if (part_overhead + need > max_part_bytes) {
            return error{errc::config_bad_value, "lkh: a part of " + std::to_string(max_part_bytes) +
                                                     " bytes cannot hold one wrapped key"};
        }
        if (used + need > max_part_bytes) {
            starts.push_back(i);
            used = part_overhead;
        }
        used += need;
    }
    if (starts.size() > 0xffff) {
        return error{errc::config_bad_value, "lkh: rekey needs more than 65535 parts"};
    }
    std::vector<bytes> parts;
    for (size_t p = 0; p < starts.size(); ++p) {
        const size_t end = p + 1 < starts.size() ? starts[p + 1] : rekey.keys.size();
        key_bag bag{key_bag_type::member, {part_attribute(rekey.epoch, uint16_t(p), uint16_t(starts.size()))}};
        for (size_t i = starts[p]; i < end; ++i) {
            bag.attributes.push_back(wrap_key_attribute(rekey.keys[i]));
        }
        const payload kd{payload_type::kd, false, kd_payload{{std::move(bag)}}};
        bytes out;
        encode_payload_chain(out, std::span<const payload>(&kd, 1));
        parts.push_back(std::move(out));
    }
    return parts;
}

result<lkh_rekey_index> decode_lkh_rekey(std::span<const bytes> parts)
{
    std::vector<std::optional<decoded_part>> in_order;
    uint32_t epoch = 0;
    for (const bytes& data : parts) {
        result<decoded_part> part = decode_part(data);
        if (!part) {
            return part.err();
        }
        if (in_order.empty()) {
            in_order.resize(part->count);
            epoch = part->epoch;
        }
        if (part->count != in_order.size() || part->epoch != epoch || in_order[part->index]) {
            return make_error(reason::bad_attribute, "LKH parts of different rekeys, or a part twice");
        }
        const uint16_t index = part->index;
        in_order[index] = std::move(*part);
    }
    if (in_order.empty() || parts.size() != in_order.size()) {
        return make_error(reason::missing_payload, "LKH rekey: " + std::to_string(parts.size()) + " of " +
                                                       std::to_string(in_order.size()) + " parts");
    }
    std::vector<wrapped_key> keys;
    for (std::optional<decoded_part>& part : in_order) {
        for (wrapped_key& wk : part->keys) {
            keys.push_back(std::move(wk));
        }
    }
    return lkh_rekey_index(epoch, std::move(keys));
}

result<std::vector<attribute>> encode_lkh_path(std::span<const lkh_path_key> path, byte_view wrap_key)
{
    std::vector<attribute> out;
    for (size_t i = 0; i < path.size(); ++i) {
        const byte_view kwk = i == 0 ? wrap_key : path[i - 1].key.view();
        result<bytes> wrapped = key_wrap(kwk, path[i].key.view());
        if (!wrapped) {
            return wrapped.err();
        }
        const uint32_t kwk_id = i == 0 ? 0 : path[i - 1].key_id;
        out.push_back(wrap_key_attribute(wrapped_key{path[i].key_id, kwk_id, std::move(*wrapped)}));
    }
    return out;
}

result<std::vector<lkh_path_key>> decode_lkh_path(const std::vector<attribute>& attrs, byte_view wrap_key)
{
    std::vector<lkh_path_key> path;
    for (const attribute& a : attrs) {
        if (a.type != uint16_t(member_key_attribute::wrap_key) || a.tv) {
            continue;
        }
        result<wrapped_key> wk = wrapped_key::decode(a.value);
        if (!wk) {
            return wk.err();
        }
        const uint32_t expected_kwk = path.empty() ? 0 : path.back().key_id;
        if (wk->kwk_id != expected_kwk) {
            return make_error(reason::bad_attribute, "LKH path: key " + std::to_string(wk->key_id) +
                                                         " not wrapped under the key before it");
        }
        result<secret> key = key_unwrap(path.empty() ? wrap_key : path.back().key.view(), wk->wrapped);
        if (!key) {
            return key.err();
        }
        path.push_back(lkh_path_key{wk->key_id, std::move(*key)});
    }
    if (path.empty() || path.back().key_id != lkh_root_key_id) {
        return make_error(reason::missing_payload, "LKH path does not reach the root (Key ID 1)");
    }
    return path;
}

} // namespace msecgw::gkm
