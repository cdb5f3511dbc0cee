#pragma once
/// A small etcd v3 client for cooperating key servers ([H]): key/value, transactions, leases, a
/// monotonic allocator and a leader election, over etcd's JSON gateway (HTTP POST /v3/...; keys
/// and values base64 on the wire). Synchronous with a bounded timeout per request, and fails over
/// across the configured endpoints in order. Control-plane only (a key server's thread), never a
/// worker lcore. Values may be key material wrapped by the caller; nothing here logs a value.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hh"

namespace msecgw::etcd {

struct kv {
    std::string key;
    std::string value;
    int64_t create_revision = 0; ///< 0: the key does not exist
    int64_t mod_revision = 0;
    int64_t version = 0;
    int64_t lease = 0;
};

/// One comparison of a transaction (etcd Compare): `target` of `key` `op` the given value.
struct compare {
    enum class target { value, version, create_revision, mod_revision, lease };
    enum class op { equal, greater, less, not_equal };
    std::string key;
    target what = target::value;
    op how = op::equal;
    std::string value;   ///< for target::value
    int64_t number = 0;  ///< for the others

    static compare absent(std::string key); ///< the key does not exist (create_revision == 0)
    static compare value_is(std::string key, std::string v);
    static compare mod_revision_is(std::string key, int64_t rev);
};

/// One operation of a transaction branch: a put (with an optional lease) or a delete.
struct operation {
    enum class kind { put, del };
    kind what = kind::put;
    std::string key;
    std::string value;
    int64_t lease = 0;

    static operation put(std::string key, std::string value, int64_t lease = 0);
    static operation del(std::string key);
};

struct txn_result {
    bool succeeded = false;
    int64_t revision = 0; ///< store revision after the transaction
};

/// errc::io for "no endpoint answered" (etcd down, or no quorum: etcd answers only with a
/// leader); the detail names the endpoints and the last failure.
class client {
public:
    /// `endpoints`: "http://127.0.0.1:2379" ...; tried in order, the last good one first next time.
    static result<std::unique_ptr<client>> create(std::vector<std::string> endpoints,
                                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
    ~client();

    result<std::optional<kv>> get(const std::string& key);
    /// Every key starting with `prefix`, in key order.
    result<std::vector<kv>> range(const std::string& prefix);
    result<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0);
    result<txn_result> txn(const std::vector<compare>& when, const std::vector<operation>& then,
                           const std::vector<operation>& otherwise = {});

    /// A lease that expires `ttl` seconds after its last keepalive; its keys go with it.
    result<int64_t> lease_grant(int64_t ttl_seconds);
    /// Renews the lease; errc::config_reference when it has already expired.
    result<void> lease_keepalive(int64_t lease);
    result<void> lease_revoke(int64_t lease);

    const std::vector<std::string>& endpoints() const;

private:
    struct impl;
    explicit client(std::unique_ptr<impl> s);
    std::unique_ptr<impl> _s;
};

/// Monotonic values (SPIs, Sender-IDs, Message IDs) handed out in blocks through compare-and-swap
/// on one key: every reservation is a transaction that succeeds only on the revision it read, so
/// no two holders ever get overlapping blocks, whoever believes to be the leader (split brain
/// included). A holder uses its block and reserves the next when it runs out.
class allocator {
public:
    allocator(client& c, std::string key) : _c(c), _key(std::move(key)) {}
    /// [first, first + count): values nobody else was or will be given. `floor`: the first value
    /// ever handed out (a fresh key starts there).
    result<uint64_t> reserve(uint64_t count, uint64_t floor = 1);

private:
    client& _c;
    std::string _key;
};

/// Leader election over one key: the leader holds `key` under its lease; others wait for the
/// key to vanish (lease expiry or resignation) and take it with a create-if-absent transaction.
class election {
public:
    election(client& c, std::string key, std::string candidate_id, int64_t ttl_seconds)
        : _c(c), _key(std::move(key)), _id(std::move(candidate_id)), _ttl(ttl_seconds) {}
    ~election();

    /// Call often (well within ttl/3): renews the lease while leading, tries to take the key
    /// when free. True while this candidate leads. An error (etcd unreachable) means "not
    /// leading": a leader that cannot renew must step down before its lease can expire.
    result<bool> step();
    bool leading() const { return _leading; }
    /// Gives the key up at once (a clean stop), so a standby takes over without waiting for the TTL.
    void resign();
    /// Who leads now (the value of the key), if anyone.
    result<std::optional<std::string>> leader();

private:
    client& _c;
    std::string _key;
    std::string _id;
    int64_t _ttl;
    int64_t _lease = 0;
    bool _leading = false;
    std::chrono::steady_clock::time_point _renewed;
};

} // namespace msecgw::etcd
