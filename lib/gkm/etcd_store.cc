#include "etcd_store.hh"

#include <cstdio>

#include "wire.hh"

namespace msecgw::gkm {

namespace {

constexpr uint8_t record_version = 1;

std::string as_string(byte_view b)
{
    return std::string(b.begin(), b.end());
}

void put_blob(wire_writer& w, byte_view b)
{
    w.u16(uint16_t(b.size()));
    w.put(b);
}

std::optional<bytes> take_blob(wire_reader& r)
{
    std::optional<uint16_t> n = r.u16();
    std::optional<byte_view> b = n ? r.take(*n) : std::nullopt;
    return b ? std::optional<bytes>(bytes(b->begin(), b->end())) : std::nullopt;
}

std::string number(uint32_t v)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "%010u", v);
    return buf;
}

error etcd_error(const char* what, const error& e)
{
    return error{e.code, "gcks state in etcd: " + std::string(what) + ": " + e.detail};
}

} // namespace

result<std::unique_ptr<etcd_store>> etcd_store::open(etcd::client& c, std::string prefix, std::string candidate_id,
                                                     secret storage_key)
{
    result<sqlite::storage_wrap> storage = sqlite::storage_wrap::create(std::move(storage_key));
    if (!storage) {
        return storage.err();
    }
    std::unique_ptr<etcd_store> s(new etcd_store(c, std::move(prefix), std::move(candidate_id), std::move(*storage)));
    // etcd answers, and a wrong storage key shows on the signing key already stored.
    if (result<std::optional<secret>> k = s->signing_key_der(); !k) {
        return k.err();
    }
    return s;
}

std::string etcd_store::group_key(uint32_t group_id, const char* what) const
{
    return _prefix + "/groups/" + std::to_string(group_id) + "/" + what;
}

result<void> etcd_store::fenced(std::vector<etcd::operation> ops, const char* what)
{
    result<etcd::txn_result> t = _c.txn({etcd::compare::value_is(leader_key(), _id)}, ops);
    if (!t) {
        return etcd_error(what, t.err());
    }
    if (!t->succeeded) {
        return error{errc::io, "gcks state in etcd: " + std::string(what) + ": " + _id + " is not the leader"};
    }
    return {};
}

result<std::optional<secret>> etcd_store::signing_key_der() const
{
    result<std::optional<etcd::kv>> v = _c.get(_prefix + "/signing_key");
    if (!v) {
        return etcd_error("read signing key", v.err());
    }
    if (!*v) {
        return std::optional<secret>();
    }
    result<secret> der = _storage.unwrap(as_bytes((*v)->value), "signing key");
    if (!der) {
        return der.err();
    }
    return std::optional<secret>(std::move(*der));
}

result<void> etcd_store::save_signing_key(byte_view private_der)
{
    result<bytes> wrapped = _storage.wrap(private_der);
    if (!wrapped) {
        return wrapped.err();
    }
    const std::string key = _prefix + "/signing_key";
    // The first key server's key stays: every server signs rekeys with the same one.
    result<etcd::txn_result> t = _c.txn({etcd::compare::absent(key)}, {etcd::operation::put(key, as_string(*wrapped))});
    if (!t) {
        return etcd_error("save signing key", t.err());
    }
    return {};
}

result<std::optional<stored_group>> etcd_store::load_group(uint32_t group_id) const
{
    result<std::optional<etcd::kv>> v = _c.get(group_key(group_id, "record"));
    if (!v) {
        return etcd_error("read group", v.err());
    }
    if (!*v) {
        return std::optional<stored_group>();
    }
    const byte_view raw = as_bytes((*v)->value);
    wire_reader r(raw);
    stored_group g;
    g.group_id = group_id;
    std::optional<uint8_t> version = r.u8();
    std::optional<uint32_t> spi = r.u32();
    std::optional<bytes> tek = take_blob(r);
    std::optional<bytes> kek = take_blob(r);
    std::optional<bytes> kek_spi = take_blob(r);
    std::optional<uint32_t> reserved = r.u32();
    std::optional<uint32_t> message_id = r.u32();
    if (version != record_version || !spi || !tek || !kek || !kek_spi || !reserved || !message_id) {
        return error{errc::io, "gcks state in etcd: group " + std::to_string(group_id) + ": bad record"};
    }
    result<secret> tek_key = _storage.unwrap(*tek, "TEK");
    result<secret> kek_key = _storage.unwrap(*kek, "KEK");
    if (!tek_key || !kek_key) {
        return (!tek_key ? tek_key : kek_key).err();
    }
    g.tek_spi = *spi;
    g.tek_keymat = std::move(*tek_key);
    g.kek = std::move(*kek_key);
    g.kek_spi = std::move(*kek_spi);
    g.sender_id_reserved = *reserved;
    g.next_rekey_message_id = *message_id;
    return std::optional<stored_group>(std::move(g));
}

result<void> etcd_store::save_group(const stored_group& g)
{
    result<bytes> tek = _storage.wrap(g.tek_keymat.view());
    result<bytes> kek = _storage.wrap(g.kek.view());
    if (!tek || !kek) {
        return (!tek ? tek : kek).err();
    }
    bytes raw;
    wire_writer w(raw);
    w.u8(record_version);
    w.u32(g.tek_spi);
    put_blob(w, *tek);
    put_blob(w, *kek);
    put_blob(w, g.kek_spi);
    w.u32(g.sender_id_reserved);
    w.u32(g.next_rekey_message_id);
    return fenced({etcd::operation::put(group_key(g.group_id, "record"), as_string(raw))}, "save group");
}

result<bool> etcd_store::claim_spi(uint32_t spi, uint32_t group_id)
{
    const std::string key = _prefix + "/spis/" + number(spi);
    result<etcd::txn_result> t = _c.txn({etcd::compare::absent(key)}, {etcd::operation::put(key, std::to_string(group_id))});
    if (!t) {
        return etcd_error("claim TEK SPI", t.err());
    }
    return t->succeeded;
}

result<uint32_t> etcd_store::reserve(uint32_t group_id, counter which, uint32_t next, uint32_t count)
{
    const bool message_ids = which == counter::message_id;
    const char* what = message_ids ? "reserve Message IDs" : "reserve Sender-IDs";
    etcd::allocator a(_c, group_key(group_id, message_ids ? "message_id" : "sender_id"));
    result<uint64_t> first = a.reserve(count, next);
    if (!first) {
        return etcd_error(what, first.err());
    }
    if (*first + count > 0xffffffffull) {
        return error{errc::unsupported, "gcks state in etcd: " + std::string(what) + ": values exhausted"};
    }
    return uint32_t(*first);
}


result<std::vector<endpoint>> etcd_store::members(uint32_t group_id) const
{
    result<std::vector<etcd::kv>> all = _c.range(group_key(group_id, "members/"));
    if (!all) {
        return etcd_error("read members", all.err());
    }
    std::vector<endpoint> out;
    for (const etcd::kv& m : *all) {
        const byte_view raw = as_bytes(m.value);
        wire_reader r(raw);
        std::optional<uint32_t> address = r.u32();
        std::optional<uint16_t> port = r.u16();
        if (address && port) {
            out.push_back(endpoint{*address, *port});
        }
    }
    return out;
}

result<void> etcd_store::record_registration(uint32_t group_id, const endpoint& where, const std::string& identity,
                                             std::optional<uint32_t> sender_id)
{
    bytes raw;
    wire_writer w(raw);
    w.u32(where.address);
    w.u16(where.port);
    const std::string member = group_key(group_id, "members/") + where.to_string();
    std::vector<etcd::operation> ops{etcd::operation::put(member, as_string(raw))};
    if (!sender_id) {
        return fenced(std::move(ops), "add member");
    }
    // A Sender-ID recorded twice would be a bug: the transaction fails loudly then.
    const std::string sender = group_key(group_id, "senders/") + number(*sender_id);
    ops.push_back(etcd::operation::put(sender, identity));
    result<etcd::txn_result> t =
        _c.txn({etcd::compare::value_is(leader_key(), _id), etcd::compare::absent(sender)}, ops);
    if (!t) {
        return etcd_error("record Sender-ID", t.err());
    }
    if (!t->succeeded) {
        return error{errc::io, "gcks state in etcd: record Sender-ID " + std::to_string(*sender_id) +
                                   ": recorded before, or " + _id + " is not the leader"};
    }
    return {};
}

result<std::vector<sender_assignment>> etcd_store::sender_ids(uint32_t group_id) const
{
    result<std::vector<etcd::kv>> all = _c.range(group_key(group_id, "senders/"));
    if (!all) {
        return etcd_error("read Sender-IDs", all.err());
    }
    std::vector<sender_assignment> out;
    const size_t skip = group_key(group_id, "senders/").size();
    for (const etcd::kv& s : *all) {
        out.push_back(sender_assignment{uint32_t(std::stoul(s.key.substr(skip))), s.value});
    }
    return out;
}

} // namespace msecgw::gkm
