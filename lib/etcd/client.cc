#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>

#include "etcd.hh"

namespace msecgw::etcd {

namespace {

using json = nlohmann::json;

std::string b64(const std::string& in)
{
    std::string out(4 * ((in.size() + 2) / 3), '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

result<std::string> unb64(const std::string& in)
{
    if (in.size() % 4 != 0) {
        return error{errc::io, "etcd: a base64 field of bad length"};
    }
    std::string out(3 * in.size() / 4, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    if (n < 0) {
        return error{errc::io, "etcd: a base64 field does not decode"};
    }
    size_t pad = 0;
    for (size_t i = in.size(); i > 0 && in[i - 1] == '=' && pad < 2; --i) {
        ++pad;
    }
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

/// etcd's gateway writes int64 as JSON strings and leaves zero values out.
int64_t i64(const json& j, const char* field)
{
    if (!j.contains(field)) {
        return 0;
    }
    const json& v = j.at(field);
    return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

result<kv> kv_of(const json& j)
{
    kv out;
    auto key = unb64(j.value("key", ""));
    auto value = unb64(j.value("value", ""));
    if (!key || !value) {
        return (key ? value : key).err();
    }
    out.key = std::move(key.value());
    out.value = std::move(value.value());
    out.create_revision = i64(j, "create_revision");
    out.mod_revision = i64(j, "mod_revision");
    out.version = i64(j, "version");
    out.lease = i64(j, "lease");
    return out;
}

/// The first key after every key that starts with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(std::string prefix)
{
    while (!prefix.empty()) {
        if (static_cast<unsigned char>(prefix.back()) < 0xff) {
            prefix.back() = static_cast<char>(prefix.back() + 1);
            return prefix;
        }
        prefix.pop_back();
    }
    return std::string(1, '\0'); // every key
}

json compare_json(const compare& c)
{
    static const char* const targets[] = {"VALUE", "VERSION", "CREATE", "MOD", "LEASE"};
    static const char* const ops[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
    json j{{"key", b64(c.key)}, {"target", targets[static_cast<int>(c.what)]}, {"result", ops[static_cast<int>(c.how)]}};
    switch (c.what) {
    case compare::target::value: j["value"] = b64(c.value); break;
    case compare::target::version: j["version"] = std::to_string(c.number); break;
    case compare::target::create_revision: j["create_revision"] = std::to_string(c.number); break;
    case compare::target::mod_revision: j["mod_revision"] = std::to_string(c.number); break;
    case compare::target::lease: j["lease"] = std::to_string(c.number); break;
    }
    return j;
}

json operation_json(const operation& o)
{
    if (o.what == operation::kind::del) {
        return json{{"request_delete_range", {{"key", b64(o.key)}}}};
    }
    json put{{"key", b64(o.key)}, {"value", b64(o.value)}};
    if (o.lease != 0) {
        put["lease"] = std::to_string(o.lease);
    }
    return json{{"request_put", put}};
}

} // namespace

compare compare::absent(std::string key)
{
    compare c;
    c.key = std::move(key);
    c.what = target::create_revision;
    c.number = 0;
    return c;
}

compare compare::value_is(std::string key, std::string v)
{
    compare c;
    c.key = std::move(key);
    c.value = std::move(v);
    return c;
}

compare compare::mod_revision_is(std::string key, int64_t rev)
{
    compare c;
    c.key = std::move(key);
    c.what = target::mod_revision;
    c.number = rev;
    return c;
}

operation operation::put(std::string key, std::string value, int64_t lease)
{
    return operation{kind::put, std::move(key), std::move(value), lease};
}

operation operation::del(std::string key)
{
    return operation{kind::del, std::move(key), {}, 0};
}

struct client::impl {
    std::vector<std::string> endpoints;
    std::chrono::milliseconds timeout;
    size_t preferred = 0; ///< the endpoint that answered last

    /// POSTs `body` to `path` on the preferred endpoint, then the others; the parsed answer of
    /// the first that answers 200. etcd answers only with a leader, so no quorum = no answer.
    result<json> call(const std::string& path, const json& body)
    {
        std::string failures;
        for (size_t k = 0; k < endpoints.size(); ++k) {
            const size_t i = (preferred + k) % endpoints.size();
            httplib::Client http(endpoints[i]);
            const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
            const auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout - secs);
            http.set_connection_timeout(secs.count(), usecs.count());
            http.set_read_timeout(secs.count(), usecs.count());
            http.set_write_timeout(secs.count(), usecs.count());
            auto r = http.Post(path, body.dump(), "application/json");
            if (!r) {
                failures += " " + endpoints[i] + ": " + httplib::to_string(r.error()) + ";";
                continue;
            }
            json answer = json::parse(r->body, nullptr, false);
            if (r->status != 200 || answer.is_discarded()) {
                // A gRPC error from etcd (e.g. lease not found) is an answer, not an outage.
                const std::string msg = answer.is_discarded() ? r->body.substr(0, 120) : answer.value("error", answer.value("message", ""));
                if (r->status >= 400 && r->status < 500) {
                    preferred = i;
                    return error{errc::config_reference, "etcd " + path + ": " + msg};
                }
                failures += " " + endpoints[i] + ": HTTP " + std::to_string(r->status) + " " + msg + ";";
                continue;
            }
            preferred = i;
            return answer;
        }
        return error{errc::io, "etcd " + path + ": no endpoint answered (down, or the cluster lost quorum):" + failures};
    }
};

result<std::unique_ptr<client>> client::create(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
{
    if (endpoints.empty()) {
        return error{errc::config_missing_key, "etcd: no endpoint"};
    }
    auto s = std::make_unique<impl>();
    s->endpoints = std::move(endpoints);
    s->timeout = timeout;
    return std::unique_ptr<client>(new client(std::move(s)));
}

client::client(std::unique_ptr<impl> s) : _s(std::move(s)) {}
client::~client() = default;

const std::vector<std::string>& client::endpoints() const
{
    return _s->endpoints;
}

result<std::optional<kv>> client::get(const std::string& key)
{
    auto r = _s->call("/v3/kv/range", json{{"key", b64(key)}});
    if (!r) {
        return r.err();
    }
    if (!r->contains("kvs") || r->at("kvs").empty()) {
        return std::optional<kv>{};
    }
    auto one = kv_of(r->at("kvs").at(0));
    if (!one) {
        return one.err();
    }
    return std::optional<kv>(std::move(one.value()));
}

result<std::vector<kv>> client::range(const std::string& prefix)
{
    auto r = _s->call("/v3/kv/range", json{{"key", b64(prefix)}, {"range_end", b64(prefix_end(prefix))}});
    if (!r) {
        return r.err();
    }
    std::vector<kv> out;
    for (const auto& j : r->value("kvs", json::array())) {
        auto one = kv_of(j);
        if (!one) {
            return one.err();
        }
        out.push_back(std::move(one.value()));
    }
    return out;
}

result<int64_t> client::put(const std::string& key, const std::string& value, int64_t lease)
{
    json body{{"key", b64(key)}, {"value", b64(value)}};
    if (lease != 0) {
        body["lease"] = std::to_string(lease);
    }
    auto r = _s->call("/v3/kv/put", body);
    if (!r) {
        return r.err();
    }
    return i64(r->at("header"), "revision");
}

result<txn_result> client::txn(const std::vector<compare>& when, const std::vector<operation>& then,
                               const std::vector<operation>& otherwise)
{
    json body{{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
    for (const auto& c : when) {
        body["compare"].push_back(compare_json(c));
    }
    for (const auto& o : then) {
        body["success"].push_back(operation_json(o));
    }
    for (const auto& o : otherwise) {
        body["failure"].push_back(operation_json(o));
    }
    auto r = _s->call("/v3/kv/txn", body);
    if (!r) {
        return r.err();
    }
    return txn_result{r->value("succeeded", false), i64(r->at("header"), "revision")};
}

result<int64_t> client::lease_grant(int64_t ttl_seconds)
{
    auto r = _s->call("/v3/lease/grant", json{{"TTL", std::to_string(ttl_seconds)}});
    if (!r) {
        return r.err();
    }
    const int64_t id = i64(*r, "ID");
    if (id == 0) {
        return error{errc::io, "etcd /v3/lease/grant: no lease: " + r->value("error", std::string())};
    }
    return id;
}

result<void> client::lease_keepalive(int64_t lease)
{
    auto r = _s->call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}});
    if (!r) {
        return r.err();
    }
    const json& res = r->contains("result") ? r->at("result") : *r;
    if (i64(res, "TTL") <= 0) {
        return error{errc::config_reference, "etcd lease " + std::to_string(lease) + " expired"};
    }
    return {};
}

result<void> client::lease_revoke(int64_t lease)
{
    auto r = _s->call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}});
    if (!r) {
        return r.err();
    }
    return {};
}

result<uint64_t> allocator::reserve(uint64_t count, uint64_t floor)
{
    for (int attempt = 0; attempt < 64; ++attempt) {
        auto cur = _c.get(_key);
        if (!cur) {
            return cur.err();
        }
        uint64_t first = floor;
        compare guard = compare::absent(_key);
        if (*cur) {
            first = std::stoull((*cur)->value);
            guard = compare::mod_revision_is(_key, (*cur)->mod_revision);
        }
        if (first > UINT64_MAX - count) {
            return error{errc::unsupported, "etcd allocator " + _key + ": value space exhausted"};
        }
        auto t = _c.txn({guard}, {operation::put(_key, std::to_string(first + count))});
        if (!t) {
            return t.err();
        }
        if (t->succeeded) {
            return first;
        }
        // Someone else reserved in between: read again.
    }
    return error{errc::io, "etcd allocator " + _key + ": too much contention (64 attempts)"};
}

election::~election() = default;

result<bool> election::step()
{
    const auto now = std::chrono::steady_clock::now();
    if (_lease != 0) {
        if (auto k = _c.lease_keepalive(_lease); !k) {
            if (k.err().code == errc::config_reference) {
                _lease = 0; // expired: whatever we held is gone
            }
            _leading = false; // cannot prove we still hold it: step down
            if (k.err().code != errc::config_reference) {
                return k.err();
            }
        } else {
            _renewed = now;
        }
    }
    if (_lease == 0) {
        auto l = _c.lease_grant(_ttl);
        if (!l) {
            _leading = false;
            return l.err();
        }
        _lease = *l;
        _renewed = now;
    }
    auto t = _c.txn({compare::absent(_key)}, {operation::put(_key, _id, _lease)});
    if (!t) {
        _leading = false;
        return t.err();
    }
    if (t->succeeded) {
        _leading = true;
        return true;
    }
    auto cur = _c.get(_key);
    if (!cur) {
        _leading = false;
        return cur.err();
    }
    _leading = *cur && (*cur)->value == _id && (*cur)->lease == _lease;
    return _leading;
}

void election::resign()
{
    if (_leading) {
        (void)_c.txn({compare::value_is(_key, _id)}, {operation::del(_key)});
    }
    if (_lease != 0) {
        (void)_c.lease_revoke(_lease);
    }
    _lease = 0;
    _leading = false;
}

result<std::optional<std::string>> election::leader()
{
    auto cur = _c.get(_key);
    if (!cur) {
        return cur.err();
    }
    return *cur ? std::optional<std::string>((*cur)->value) : std::nullopt;
}

} // namespace msecgw::etcd
