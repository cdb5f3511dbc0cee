#include "etcd_store.hh"

#include <algorithm>
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

result<void> etcd_store::fenced(std::vector<etcd::operation> ops, const char* what, std::vector<etcd::compare> also)
{
    also.insert(also.begin(), etcd::compare::value_is(leader_key(), _id));
    result<etcd::txn_result> t = _c.txn(also, ops);
    if (!t) {
        return etcd_error(what, t.err());
    }
    if (!t->succeeded) {
        return error{errc::io, "gcks state in etcd: " + std::string(what) + ": " + _id +
                                   (also.size() > 1 ? " is not the leader, or another key server wrote first"
                                                    : " is not the leader")};
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
    result<std::string> raw = encode(g);
    if (!raw) {
        return raw.err();
    }
    return fenced({etcd::operation::put(group_key(g.group_id, "record"), *raw)}, "save group");
}

result<uint32_t> etcd_store::save_group_taking_message_ids(stored_group g, uint32_t count)
{
    etcd::allocator a(_c, group_key(g.group_id, "message_id"));
    std::optional<error> failed;
    result<uint64_t> first = a.reserve(count, g.next_rekey_message_id, {etcd::compare::value_is(leader_key(), _id)},
                                       [&](uint64_t first) {
                                           g.next_rekey_message_id = uint32_t(std::min<uint64_t>(first + count, 0xffffffffu));
                                           result<std::string> raw = encode(g);
                                           if (!raw) {
                                               failed = raw.err();
                                               return std::vector<etcd::operation>();
                                           }
                                           return std::vector<etcd::operation>{
                                               etcd::operation::put(group_key(g.group_id, "record"), *raw)};
                                       });
    if (failed) {
        return *failed;  // (the reservation went through without the record: a harmless gap)
    }
    if (!first) {
        return first.err().code == errc::config_reference
                   ? error{errc::io, "gcks state in etcd: save rekey: " + _id + " is not the leader"}
                   : etcd_error("save rekey", first.err());
    }
    if (*first + count > 0xffffffffull) {
        return error{errc::unsupported, "gcks state in etcd: reserve Message IDs: values exhausted"};
    }
    return uint32_t(*first);
}

result<std::string> etcd_store::encode(const stored_group& g) const
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
    return as_string(raw);
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

std::unique_ptr<key_tree_store> etcd_store::key_trees()
{
    return std::make_unique<etcd_tree_store>(*this);
}

// ---- Key trees -------------------------------------------------------------------------------

namespace {

constexpr uint8_t tree_version = 1;
/// etcd's default --max-request-bytes is 1.5 MiB; a tree value must leave room for the request.
constexpr size_t tree_value_limit = 1400 * 1024;

} // namespace

/// The decoded value: node keys still wrapped (only load() unwraps them).
struct etcd_tree_store::record {
    lkh_config config;
    uint32_t epoch = 0;
    std::vector<std::pair<uint32_t, bytes>> wrapped_keys;  ///< node Key ID, key under the storage key
    std::vector<lkh_member_record> members;
    int64_t mod_revision = 0;
};

result<std::optional<etcd_tree_store::record>> etcd_tree_store::read(uint32_t group_id) const
{
    result<std::optional<etcd::kv>> v = _s._c.get(_s.group_key(group_id, "tree"));
    if (!v) {
        return etcd_error("read key tree", v.err());
    }
    if (!*v) {
        return std::optional<record>();
    }
    const byte_view raw = as_bytes((*v)->value);
    wire_reader r(raw);
    record rec;
    rec.mod_revision = (*v)->mod_revision;
    const auto bad = [&] {
        return error{errc::io, "gcks state in etcd: group " + std::to_string(group_id) + ": bad key tree record"};
    };
    std::optional<uint8_t> version = r.u8();
    std::optional<uint32_t> arity = r.u32();
    std::optional<uint32_t> capacity = r.u32();
    std::optional<uint32_t> key_size = r.u32();
    std::optional<uint32_t> epoch = r.u32();
    std::optional<uint32_t> keys = r.u32();
    if (version != tree_version || !arity || !capacity || !key_size || !epoch || !keys) {
        return bad();
    }
    rec.config = lkh_config{*arity, *capacity, *key_size};  // max_members: the tree's capacity
    rec.epoch = *epoch;
    for (uint32_t i = 0; i < *keys; ++i) {
        std::optional<uint32_t> node = r.u32();
        std::optional<bytes> wrapped = node ? take_blob(r) : std::nullopt;
        if (!wrapped) {
            return bad();
        }
        rec.wrapped_keys.emplace_back(*node, std::move(*wrapped));
    }
    std::optional<uint32_t> members = r.u32();
    for (uint32_t i = 0; members && i < *members; ++i) {
        std::optional<uint32_t> leaf = r.u32();
        std::optional<bytes> identity = leaf ? take_blob(r) : std::nullopt;
        std::optional<uint32_t> address = identity ? r.u32() : std::nullopt;
        std::optional<uint16_t> port = address ? r.u16() : std::nullopt;
        std::optional<uint8_t> leaving = port ? r.u8() : std::nullopt;
        if (!leaving) {
            return bad();
        }
        rec.members.push_back(lkh_member_record{*leaf, std::string(identity->begin(), identity->end()),
                                                endpoint{*address, *port}, *leaving != 0});
    }
    if (!members) {
        return bad();
    }
    return std::optional<record>(std::move(rec));
}

result<void> etcd_tree_store::take_keys(record& rec, const lkh_tree& tree) const
{
    rec.config = lkh_config{tree.arity(), tree.capacity(), tree.key_size()};
    rec.epoch = tree.epoch();
    rec.wrapped_keys.clear();
    // Every node with members below it lies on some member's path (as in lkh_store).
    for (uint32_t node = lkh_root_key_id; node < tree.first_leaf() + tree.capacity(); ++node) {
        std::optional<byte_view> key = tree.node_key(node);
        if (!key) {
            continue;
        }
        result<bytes> wrapped = _s._storage.wrap(*key);
        if (!wrapped) {
            return wrapped.err();
        }
        rec.wrapped_keys.emplace_back(node, std::move(*wrapped));
    }
    return {};
}

result<void> etcd_tree_store::write(uint32_t group_id, const record& rec, const char* what)
{
    bytes raw;
    wire_writer w(raw);
    w.u8(tree_version);
    w.u32(rec.config.arity);
    w.u32(rec.config.max_members);
    w.u32(uint32_t(rec.config.key_size));
    w.u32(rec.epoch);
    w.u32(uint32_t(rec.wrapped_keys.size()));
    for (const auto& [node, wrapped] : rec.wrapped_keys) {
        w.u32(node);
        put_blob(w, wrapped);
    }
    w.u32(uint32_t(rec.members.size()));
    for (const lkh_member_record& m : rec.members) {
        w.u32(m.leaf);
        put_blob(w, as_bytes(m.identity));
        w.u32(m.address.address);
        w.u16(m.address.port);
        w.u8(m.leaving ? 1 : 0);
    }
    if (raw.size() > tree_value_limit) {
        return error{errc::unsupported, "gcks state in etcd: the key tree of group " + std::to_string(group_id) + " is " +
                                            std::to_string(raw.size()) + " bytes, more than one etcd request carries (" +
                                            std::to_string(tree_value_limit) + "); use state_path for a group this large"};
    }
    const std::string key = _s.group_key(group_id, "tree");
    // Fenced on the leader key and on the revision read (0: absent): a write based on a stale
    // tree fails.
    return _s.fenced({etcd::operation::put(key, as_string(raw))}, what,
                     {etcd::compare::mod_revision_is(key, rec.mod_revision)});
}

result<void> etcd_tree_store::save_tree(uint32_t group_id, const lkh_tree& tree)
{
    result<std::optional<record>> current = read(group_id);
    if (!current) {
        return current.err();
    }
    record rec;
    rec.mod_revision = *current ? (*current)->mod_revision : 0;
    if (result<void> k = take_keys(rec, tree); !k) {
        return k;
    }
    return write(group_id, rec, "save key tree");
}

result<void> etcd_tree_store::save_rekey(uint32_t group_id, const lkh_tree& tree, const lkh_rekey& rekey,
                                         std::span<const lkh_member_record> joined)
{
    result<std::optional<record>> current = read(group_id);
    if (!current) {
        return current.err();
    }
    if (!*current || (*current)->epoch + 1 != rekey.epoch) {
        return error{errc::io, "gcks state in etcd: the key tree of group " + std::to_string(group_id) +
                                   " is not stored at epoch " + std::to_string(rekey.epoch - 1)};
    }
    record& rec = **current;
    std::erase_if(rec.members, [&](const lkh_member_record& m) {
        return std::find(rekey.left.begin(), rekey.left.end(), m.leaf) != rekey.left.end() ||
               std::any_of(joined.begin(), joined.end(), [&](const lkh_member_record& j) { return j.leaf == m.leaf; });
    });
    for (const lkh_member_record& j : joined) {
        rec.members.push_back(lkh_member_record{j.leaf, j.identity, j.address, false});
    }
    std::sort(rec.members.begin(), rec.members.end(), [](const auto& a, const auto& b) { return a.leaf < b.leaf; });
    if (result<void> k = take_keys(rec, tree); !k) {
        return k;
    }
    return write(group_id, rec, "save key tree commit");
}

result<void> etcd_tree_store::mark_leaving(uint32_t group_id, uint32_t leaf)
{
    result<std::optional<record>> current = read(group_id);
    if (!current || !*current) {
        return current ? result<void>() : result<void>(current.err());
    }
    for (lkh_member_record& m : (*current)->members) {
        m.leaving = m.leaving || m.leaf == leaf;
    }
    return write(group_id, **current, "mark key tree member leaving");
}

result<std::vector<lkh_member_record>> etcd_tree_store::members(uint32_t group_id) const
{
    result<std::optional<record>> current = read(group_id);
    if (!current) {
        return current.err();
    }
    return *current ? std::move((*current)->members) : std::vector<lkh_member_record>();
}

result<std::optional<lkh_tree>> etcd_tree_store::load(uint32_t group_id) const
{
    result<std::optional<record>> current = read(group_id);
    if (!current || !*current) {
        return current ? result<std::optional<lkh_tree>>(std::optional<lkh_tree>()) : current.err();
    }
    std::vector<lkh_path_key> keys;
    for (const auto& [node, wrapped] : (*current)->wrapped_keys) {
        result<secret> key = _s._storage.unwrap(wrapped, "LKH key of group " + std::to_string(group_id) + " node " +
                                                             std::to_string(node));
        if (!key) {
            return key.err();
        }
        keys.push_back(lkh_path_key{node, std::move(*key)});
    }
    result<lkh_tree> tree = lkh_tree::restore((*current)->config, (*current)->epoch, keys);
    if (!tree) {
        return tree.err();
    }
    return std::optional<lkh_tree>(std::move(*tree));
}

} // namespace msecgw::gkm
