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
    result<std::vector<endpoint>> members(uint32_t group_id) const override;
    /// Fenced on the leader key; the Sender-ID record is create-if-absent.
    result<void> record_registration(uint32_t group_id, const endpoint& where, const std::string& identity,
                                     std::optional<uint32_t> sender_id) override;
    result<std::vector<sender_assignment>> sender_ids(uint32_t group_id) const override;

private:
    etcd_store(etcd::client& c, std::string prefix, std::string candidate_id, sqlite::storage_wrap storage)
        : _c(c), _prefix(std::move(prefix)), _id(std::move(candidate_id)), _storage(std::move(storage))
    {
    }
    std::string group_key(uint32_t group_id, const char* what) const;
    /// The operations in one transaction, only while we hold the leader key.
    result<void> fenced(std::vector<etcd::operation> ops, const char* what);

    etcd::client& _c;
    std::string _prefix;
    std::string _id;
    sqlite::storage_wrap _storage;
};

} // namespace msecgw::gkm
