#pragma once
/// GCKS state in etcd (internal header), shared by cooperating key servers ([H], README.md
/// "Several key servers on etcd"): the same content as the SQLite store (store.hh) under one key
/// prefix, keys wrapped under the same storage key (sqlite::storage_wrap).
///
///   <prefix>/signing_key                 wrapped private DER, written create-if-absent
///   <prefix>/groups/<id>/record          TEK SPI, wrapped TEK and KEK, KEK SPI, Sender-ID and Message ID marks
///   <prefix>/groups/<id>/message_id      etcd::allocator: next GSA_REKEY Message ID
///   <prefix>/groups/<id>/sender_id       etcd::allocator: next Sender-ID block
///   <prefix>/groups/<id>/members/<addr>  where rekeys go
///   <prefix>/groups/<id>/senders/<id>    who got which Sender-ID (create-if-absent: never twice)
///   <prefix>/groups/<id>/tree            key_tree groups: the LKH tree's shape, epoch, every node key
///                                        (each wrapped) and member records, one value (etcd_tree_store)
///   <prefix>/spis/<spi>                  every TEK SPI ever issued (create-if-absent: the claim)
///   <prefix>/leader                      the election key (etcd::election)
///
/// Monotonic values are unique across every key server whatever each believes about leadership
/// (allocator transactions and create-if-absent claims). Writes of group state are fenced: they
/// succeed only while the leader key names this candidate, so a deposed leader cannot overwrite
/// its successor's TEK. Every call blocks at most the etcd client's timeout per endpoint.

#include <memory>
#include <string>

#include "etcd/etcd.hh"
#include "lkh_store.hh"
#include "store.hh"

namespace msecgw::gkm {

class etcd_store final : public gcks_state {
public:
    /// Fails when etcd does not answer or the storage key does not open the signing key stored there.
    static result<std::unique_ptr<etcd_store>> open(etcd::client& c, std::string prefix, std::string candidate_id,
                                                    secret storage_key);
    /// The key etcd::election campaigns on.
    std::string leader_key() const { return _prefix + "/leader"; }

    result<std::optional<secret>> signing_key_der() const override;
    /// Create-if-absent: the first key server's key stays.
    result<void> save_signing_key(byte_view private_der) override;
    result<std::optional<stored_group>> load_group(uint32_t group_id) const override;
    /// Fenced on the leader key.
    result<void> save_group(const stored_group& g) override;
    /// Create-if-absent on <prefix>/spis/<spi>.
    result<bool> claim_spi(uint32_t spi, uint32_t group_id) override;
    /// etcd::allocator blocks; `next` is only the floor of a group's first reservation.
    result<uint32_t> reserve(uint32_t group_id, counter what, uint32_t next, uint32_t count) override;
    /// One transaction: the Message ID allocator's compare-and-swap, the leader fence, the record.
    result<uint32_t> save_group_taking_message_ids(stored_group g, uint32_t count) override;
    result<std::vector<endpoint>> members(uint32_t group_id) const override;
    /// Fenced on the leader key; the Sender-ID record is create-if-absent.
    result<void> record_registration(uint32_t group_id, const endpoint& where, const std::string& identity,
                                     std::optional<uint32_t> sender_id) override;
    result<std::vector<sender_assignment>> sender_ids(uint32_t group_id) const override;

    /// The key trees of key_tree groups, in the same etcd under the same prefix; refers to this
    /// store, which must outlive it.
    std::unique_ptr<key_tree_store> key_trees();

private:
    friend class etcd_tree_store;
    etcd_store(etcd::client& c, std::string prefix, std::string candidate_id, sqlite::storage_wrap storage)
        : _c(c), _prefix(std::move(prefix)), _id(std::move(candidate_id)), _storage(std::move(storage))
    {
    }
    std::string group_key(uint32_t group_id, const char* what) const;
    /// The group record as stored (keys wrapped).
    result<std::string> encode(const stored_group& g) const;
    /// The operations in one transaction, only while we hold the leader key (and `also` holds).
    result<void> fenced(std::vector<etcd::operation> ops, const char* what, std::vector<etcd::compare> also = {});

    etcd::client& _c;
    std::string _prefix;
    std::string _id;
    sqlite::storage_wrap _storage;
};

/// A group's key tree as one etcd value, <prefix>/groups/<id>/tree: written whole by every
/// commit in a transaction fenced on the leader key and on the revision it read, so a standby
/// that takes over resumes the tree (same node keys, same epoch) and a deposed leader cannot
/// overwrite its successor's commit. The value grows with the members (about 20 bytes per node
/// key plus the member records) and must fit etcd's request limit (--max-request-bytes, 1.5 MiB
/// by default: some tens of thousands of members).
class etcd_tree_store final : public key_tree_store {
public:
    explicit etcd_tree_store(etcd_store& s) : _s(s) {}

    result<void> save_tree(uint32_t group_id, const lkh_tree& tree) override;
    result<void> save_rekey(uint32_t group_id, const lkh_tree& tree, const lkh_rekey& rekey,
                            std::span<const lkh_member_record> joined) override;
    result<void> mark_leaving(uint32_t group_id, uint32_t leaf) override;
    result<std::vector<lkh_member_record>> members(uint32_t group_id) const override;
    result<std::optional<lkh_tree>> load(uint32_t group_id) const override;

    struct record;

private:
    result<std::optional<record>> read(uint32_t group_id) const;
    /// rec's shape, epoch and wrapped node keys from `tree`.
    result<void> take_keys(record& rec, const lkh_tree& tree) const;
    /// Fenced on the leader key and on rec.mod_revision (0: the group has no tree yet).
    result<void> write(uint32_t group_id, const record& rec, const char* what);

    etcd_store& _s;
};

} // namespace msecgw::gkm
