#include "lkh_store.hh"

namespace msecgw::gkm {

namespace {

using sqlite::db_error;
using sqlite::statement;

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS lkh_trees(
    group_id INTEGER PRIMARY KEY,
    arity INTEGER NOT NULL, capacity INTEGER NOT NULL, key_size INTEGER NOT NULL,
    epoch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lkh_keys(
    group_id INTEGER NOT NULL, node_id INTEGER NOT NULL, key_wrapped BLOB NOT NULL,
    PRIMARY KEY(group_id, node_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lkh_members(
    group_id INTEGER NOT NULL, leaf INTEGER NOT NULL, identity TEXT NOT NULL,
    address INTEGER NOT NULL, port INTEGER NOT NULL, leaving INTEGER NOT NULL,
    PRIMARY KEY(group_id, leaf)) WITHOUT ROWID;
)sql";

std::string node_name(uint32_t group_id, uint32_t node_id)
{
    return "LKH key of group " + std::to_string(group_id) + " node " + std::to_string(node_id);
}

} // namespace

result<lkh_store> lkh_store::open(const std::string& path, secret storage_key)
{
    result<sqlite::storage_wrap> storage = sqlite::storage_wrap::create(std::move(storage_key));
    if (!storage) {
        return storage.err();
    }
    result<sqlite::db_ptr> db = sqlite::open_database(path, schema);
    if (!db) {
        return db.err();
    }
    lkh_store store(std::move(*db), std::move(*storage));
    // A wrong storage key shows on the first key already stored.
    statement q(store._db.get(), "SELECT group_id, node_id, key_wrapped FROM lkh_keys LIMIT 1");
    if (q.step() == SQLITE_ROW) {
        if (result<secret> k = store._storage.unwrap(q.blob(2), node_name(uint32_t(q.integer(0)), uint32_t(q.integer(1))));
            !k) {
            return k.err();
        }
    }
    return store;
}

result<void> lkh_store::write_key(uint32_t group_id, const lkh_tree& tree, uint32_t node_id)
{
    std::optional<byte_view> key = tree.node_key(node_id);
    if (!key) {
        statement q(_db.get(), "DELETE FROM lkh_keys WHERE group_id = ?1 AND node_id = ?2");
        return q.bind(1, int64_t(group_id)).bind(2, int64_t(node_id)).run("delete LKH key");
    }
    result<bytes> wrapped = _storage.wrap(*key);
    if (!wrapped) {
        return wrapped.err();
    }
    statement q(_db.get(), "INSERT OR REPLACE INTO lkh_keys(group_id, node_id, key_wrapped) VALUES(?1, ?2, ?3)");
    return q.bind(1, int64_t(group_id)).bind(2, int64_t(node_id)).bind(3, byte_view(*wrapped)).run("save LKH key");
}

result<void> lkh_store::save_tree(uint32_t group_id, const lkh_tree& tree)
{
    return sqlite::transaction(_db.get(), "PRAGMA synchronous=FULL", [&]() -> result<void> {
        for (const char* sql : {"DELETE FROM lkh_keys WHERE group_id = ?1", "DELETE FROM lkh_members WHERE group_id = ?1"}) {
            statement clear(_db.get(), sql);
            if (result<void> r = clear.bind(1, int64_t(group_id)).run("clear LKH tree"); !r) {
                return r;
            }
        }
        statement q(_db.get(), "INSERT OR REPLACE INTO lkh_trees(group_id, arity, capacity, key_size, epoch) "
                               "VALUES(?1, ?2, ?3, ?4, ?5)");
        q.bind(1, int64_t(group_id)).bind(2, int64_t(tree.arity())).bind(3, int64_t(tree.capacity()));
        if (result<void> r = q.bind(4, int64_t(tree.key_size())).bind(5, int64_t(tree.epoch())).run("save LKH tree"); !r) {
            return r;
        }
        // Every node with members below it lies on some member's path.
        for (uint32_t node = lkh_root_key_id; node < tree.first_leaf() + tree.capacity(); ++node) {
            if (!tree.node_key(node)) {
                continue;
            }
            if (result<void> r = write_key(group_id, tree, node); !r) {
                return r;
            }
        }
        return {};
    });
}

result<void> lkh_store::save_rekey(uint32_t group_id, const lkh_tree& tree, const lkh_rekey& rekey,
                                   std::span<const lkh_member_record> joined)
{
    return sqlite::transaction(_db.get(), "PRAGMA synchronous=FULL", [&]() -> result<void> {
        statement q(_db.get(), "UPDATE lkh_trees SET epoch = ?1 WHERE group_id = ?2 AND epoch = ?3");
        q.bind(1, int64_t(rekey.epoch)).bind(2, int64_t(group_id)).bind(3, int64_t(rekey.epoch) - 1);
        if (result<void> r = q.run("save LKH epoch"); !r) {
            return r;
        }
        if (sqlite3_changes(_db.get()) != 1) {
            return error{errc::io, "gcks state: LKH tree of group " + std::to_string(group_id) + " is not stored at epoch " +
                                       std::to_string(rekey.epoch - 1)};
        }
        for (uint32_t node : rekey.changed) {
            if (result<void> r = write_key(group_id, tree, node); !r) {
                return r;
            }
        }
        statement gone(_db.get(), "DELETE FROM lkh_members WHERE group_id = ?1 AND leaf = ?2");
        for (uint32_t leaf : rekey.left) {
            gone.reset();
            if (result<void> r = gone.bind(1, int64_t(group_id)).bind(2, int64_t(leaf)).run("delete LKH member"); !r) {
                return r;
            }
        }
        statement add(_db.get(), "INSERT OR REPLACE INTO lkh_members(group_id, leaf, identity, address, port, leaving) "
                                 "VALUES(?1, ?2, ?3, ?4, ?5, 0)");
        for (const lkh_member_record& m : joined) {
            add.reset();
            add.bind(1, int64_t(group_id)).bind(2, int64_t(m.leaf)).bind(3, as_bytes(m.identity));
            if (result<void> r = add.bind(4, int64_t(m.address.address)).bind(5, int64_t(m.address.port)).run("save LKH member");
                !r) {
                return r;
            }
        }
        return {};
    });
}

result<void> lkh_store::mark_leaving(uint32_t group_id, uint32_t leaf)
{
    return sqlite::transaction(_db.get(), "PRAGMA synchronous=FULL", [&]() -> result<void> {
        statement q(_db.get(), "UPDATE lkh_members SET leaving = 1 WHERE group_id = ?1 AND leaf = ?2");
        return q.bind(1, int64_t(group_id)).bind(2, int64_t(leaf)).run("mark LKH member leaving");
    });
}

result<std::vector<lkh_member_record>> lkh_store::members(uint32_t group_id) const
{
    statement q(_db.get(), "SELECT leaf, identity, address, port, leaving FROM lkh_members WHERE group_id = ?1 ORDER BY leaf");
    q.bind(1, int64_t(group_id));
    std::vector<lkh_member_record> out;
    int rc = SQLITE_ROW;
    while ((rc = q.step()) == SQLITE_ROW) {
        const bytes id = q.blob(1);
        out.push_back(lkh_member_record{uint32_t(q.integer(0)), std::string(id.begin(), id.end()),
                                        endpoint{uint32_t(q.integer(2)), uint16_t(q.integer(3))}, q.integer(4) != 0});
    }
    if (rc != SQLITE_DONE) {
        return db_error(_db.get(), "read LKH members");
    }
    return out;
}

result<std::optional<lkh_tree>> lkh_store::load(uint32_t group_id) const
{
    statement shape(_db.get(), "SELECT arity, capacity, key_size, epoch FROM lkh_trees WHERE group_id = ?1");
    const int rc = shape.bind(1, int64_t(group_id)).step();
    if (rc == SQLITE_DONE) {
        return std::optional<lkh_tree>();
    }
    if (rc != SQLITE_ROW) {
        return db_error(_db.get(), "read LKH tree");
    }
    const lkh_config config{unsigned(shape.integer(0)), uint32_t(shape.integer(1)), size_t(shape.integer(2))};
    std::vector<lkh_path_key> keys;
    statement q(_db.get(), "SELECT node_id, key_wrapped FROM lkh_keys WHERE group_id = ?1");
    q.bind(1, int64_t(group_id));
    int step = SQLITE_ROW;
    while ((step = q.step()) == SQLITE_ROW) {
        const uint32_t node = uint32_t(q.integer(0));
        result<secret> key = _storage.unwrap(q.blob(1), node_name(group_id, node));
        if (!key) {
            return key.err();
        }
        keys.push_back(lkh_path_key{node, std::move(*key)});
    }
    if (step != SQLITE_DONE) {
        return db_error(_db.get(), "read LKH keys");
    }
    result<lkh_tree> tree = lkh_tree::restore(config, uint32_t(shape.integer(3)), keys);
    if (!tree) {
        return tree.err();
    }
    return std::optional<lkh_tree>(std::move(*tree));
}

} // namespace msecgw::gkm
