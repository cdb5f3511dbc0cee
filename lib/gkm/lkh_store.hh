#pragma once
/// The LKH key tree in SQLite (internal header): per group the tree's shape and epoch, and the key
/// of every node with members below it (leaves included: they are the members), each wrapped
/// (RFC 5649) under the storage key like the rest of the GCKS state (sqlite_db.hh). It can share
/// the GCKS's database file (its own tables, lkh_*).
///
/// Write before send: save_rekey() commits a batch (synchronous=FULL) before its rekey leaves the
/// key server, so a restart resumes with the keys members were given. Joins and leaves not
/// committed yet are not stored: after a restart the GCKS queues them again.

#include <optional>
#include <string>

#include "lkh.hh"
#include "sqlite_db.hh"
#include "udp.hh"

namespace msecgw::gkm {

/// Who holds a leaf of a GCKS's tree, where its rekeys go, and whether it is queued to leave.
struct lkh_member_record {
    uint32_t leaf = 0;
    std::string identity;
    endpoint address;
    bool leaving = false;
};

class lkh_store {
public:
    /// Opens (creating if needed) the database at path; fails when storage_key does not open the
    /// keys already in it.
    static result<lkh_store> open(const std::string& path, secret storage_key);

    /// Writes a whole tree, replacing what the group had (a new group, or after a bulk load).
    result<void> save_tree(uint32_t group_id, const lkh_tree& tree);
    /// Writes what one commit changed; the stored tree must be at rekey.epoch − 1. In the same
    /// transaction: the records of rekey.left are deleted and those of the joiners written.
    result<void> save_rekey(uint32_t group_id, const lkh_tree& tree, const lkh_rekey& rekey,
                            std::span<const lkh_member_record> joined = {});
    /// A leave queued for the next commit (an eviction survives a restart before the commit).
    result<void> mark_leaving(uint32_t group_id, uint32_t leaf);
    /// The group's member records, by leaf.
    result<std::vector<lkh_member_record>> members(uint32_t group_id) const;
    /// The group's tree as last saved, or nothing.
    result<std::optional<lkh_tree>> load(uint32_t group_id) const;

private:
    lkh_store(sqlite::db_ptr db, sqlite::storage_wrap storage) : _db(std::move(db)), _storage(std::move(storage)) {}
    result<void> write_key(uint32_t group_id, const lkh_tree& tree, uint32_t node_id);

    sqlite::db_ptr _db;
    sqlite::storage_wrap _storage;
};

} // namespace msecgw::gkm
