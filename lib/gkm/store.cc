#include "store.hh"

#include "sqlite_db.hh"

#include <sys/stat.h>

#include <openssl/crypto.h>

#include <fstream>
#include <iterator>

namespace msecgw::gkm {

namespace {

using sqlite::db_error;
using sqlite::db_ptr;
using sqlite::exec;
using sqlite::statement;

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS groups(
    group_id INTEGER PRIMARY KEY,
    tek_spi INTEGER NOT NULL,
    tek_keymat_wrapped BLOB NOT NULL,
    kek_wrapped BLOB NOT NULL,
    kek_spi BLOB NOT NULL,
    sender_id_reserved INTEGER NOT NULL,
    next_rekey_message_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tek_spis(spi INTEGER PRIMARY KEY, group_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members(
    group_id INTEGER NOT NULL, address INTEGER NOT NULL, port INTEGER NOT NULL,
    PRIMARY KEY(group_id, address, port));
CREATE TABLE IF NOT EXISTS sender_ids(
    group_id INTEGER NOT NULL, sender_id INTEGER NOT NULL, identity TEXT NOT NULL,
    address INTEGER NOT NULL, port INTEGER NOT NULL,
    PRIMARY KEY(group_id, sender_id));
)sql";

} // namespace

result<secret> load_storage_key(const std::string& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return error{errc::io, "storage key " + path + ": cannot be read"};
    }
    if ((st.st_mode & 077) != 0) {
        return error{errc::config_bad_value, "storage key " + path + ": readable by group or others (chmod 600)"};
    }
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    secret key;
    if (text.size() == storage_key_size) {
        key = secret(as_bytes(text));
    } else {
        bytes parsed = from_hex(text);
        if (parsed.size() == storage_key_size) {
            key = secret(parsed);
        }
        OPENSSL_cleanse(parsed.data(), parsed.size());
    }
    OPENSSL_cleanse(text.data(), text.size());
    if (key.empty()) {
        return error{errc::config_bad_value, "storage key " + path + ": need 64 hex digits or 32 bytes"};
    }
    return key;
}

struct gcks_store::impl {
    db_ptr db;
    sqlite::storage_wrap storage;

    result<bytes> wrap(byte_view key) const { return storage.wrap(key); }
    result<secret> unwrap(byte_view wrapped, const char* what) const { return storage.unwrap(wrapped, what); }

    template <class Body>
    result<void> transaction(const char* synchronous, Body body)
    {
        return sqlite::transaction(db.get(), synchronous, std::move(body));
    }
};

result<gcks_store> gcks_store::open(const std::string& path, secret storage_key)
{
    result<sqlite::storage_wrap> storage = sqlite::storage_wrap::create(std::move(storage_key));
    if (!storage) {
        return storage.err();
    }
    result<db_ptr> db = sqlite::open_database(path, schema);
    if (!db) {
        return db.err();
    }
    auto s = std::make_unique<impl>(impl{std::move(*db), std::move(*storage)});
    gcks_store store(std::move(s));
    // A wrong storage key shows on the first key we already hold.
    if (result<std::optional<secret>> k = store.signing_key_der(); !k) {
        return k.err();
    }
    return store;
}

gcks_store::gcks_store(std::unique_ptr<impl> s) : _s(std::move(s)) {}
gcks_store::gcks_store(gcks_store&&) noexcept = default;
gcks_store& gcks_store::operator=(gcks_store&&) noexcept = default;
gcks_store::~gcks_store() = default;

result<std::optional<secret>> gcks_store::signing_key_der() const
{
    statement q(_s->db.get(), "SELECT value FROM meta WHERE name = 'signing_key'");
    const int rc = q.step();
    if (rc == SQLITE_DONE) {
        return std::optional<secret>();
    }
    if (rc != SQLITE_ROW) {
        return db_error(_s->db.get(), "read signing key");
    }
    result<secret> der = _s->unwrap(q.blob(0), "signing key");
    if (!der) {
        return der.err();
    }
    return std::optional<secret>(std::move(*der));
}

result<void> gcks_store::save_signing_key(byte_view private_der)
{
    result<bytes> wrapped = _s->wrap(private_der);
    if (!wrapped) {
        return wrapped.err();
    }
    return _s->transaction("PRAGMA synchronous=FULL", [&]() -> result<void> {
        statement q(_s->db.get(), "INSERT OR REPLACE INTO meta(name, value) VALUES('signing_key', ?1)");
        return q.bind(1, byte_view(*wrapped)).run("save signing key");
    });
}

result<std::optional<stored_group>> gcks_store::load_group(uint32_t group_id) const
{
    statement q(_s->db.get(),
                "SELECT tek_spi, tek_keymat_wrapped, kek_wrapped, kek_spi, sender_id_reserved, next_rekey_message_id "
                "FROM groups WHERE group_id = ?1");
    const int rc = q.bind(1, int64_t(group_id)).step();
    if (rc == SQLITE_DONE) {
        return std::optional<stored_group>();
    }
    if (rc != SQLITE_ROW) {
        return db_error(_s->db.get(), "read group");
    }
    result<secret> tek = _s->unwrap(q.blob(1), "TEK");
    result<secret> kek = _s->unwrap(q.blob(2), "KEK");
    if (!tek || !kek) {
        return (!tek ? tek : kek).err();
    }
    stored_group g;
    g.group_id = group_id;
    g.tek_spi = uint32_t(q.integer(0));
    g.tek_keymat = std::move(*tek);
    g.kek = std::move(*kek);
    g.kek_spi = q.blob(3);
    g.sender_id_reserved = uint32_t(q.integer(4));
    g.next_rekey_message_id = uint32_t(q.integer(5));
    return std::optional<stored_group>(std::move(g));
}

result<void> gcks_store::save_group(const stored_group& g)
{
    result<bytes> tek = _s->wrap(g.tek_keymat.view());
    result<bytes> kek = _s->wrap(g.kek.view());
    if (!tek || !kek) {
        return (!tek ? tek : kek).err();
    }
    return _s->transaction("PRAGMA synchronous=FULL", [&]() -> result<void> {
        statement spi(_s->db.get(), "INSERT OR IGNORE INTO tek_spis(spi, group_id) VALUES(?1, ?2)");
        if (result<void> r = spi.bind(1, int64_t(g.tek_spi)).bind(2, int64_t(g.group_id)).run("record TEK SPI"); !r) {
            return r;
        }
        statement q(_s->db.get(),
                    "INSERT OR REPLACE INTO groups(group_id, tek_spi, tek_keymat_wrapped, kek_wrapped, kek_spi, "
                    "sender_id_reserved, next_rekey_message_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
        return q.bind(1, int64_t(g.group_id))
            .bind(2, int64_t(g.tek_spi))
            .bind(3, byte_view(*tek))
            .bind(4, byte_view(*kek))
            .bind(5, byte_view(g.kek_spi))
            .bind(6, int64_t(g.sender_id_reserved))
            .bind(7, int64_t(g.next_rekey_message_id))
            .run("save group");
    });
}

bool gcks_store::spi_issued(uint32_t spi) const
{
    statement q(_s->db.get(), "SELECT 1 FROM tek_spis WHERE spi = ?1");
    return q.bind(1, int64_t(spi)).step() != SQLITE_DONE;
}

result<bool> gcks_store::claim_spi(uint32_t spi, uint32_t /*group_id*/)
{
    return !spi_issued(spi);
}

result<uint32_t> gcks_store::reserve(uint32_t /*group_id*/, counter /*what*/, uint32_t next, uint32_t /*count*/)
{
    return next;
}

result<std::vector<endpoint>> gcks_store::members(uint32_t group_id) const
{
    statement q(_s->db.get(), "SELECT address, port FROM members WHERE group_id = ?1 ORDER BY rowid");
    q.bind(1, int64_t(group_id));
    std::vector<endpoint> out;
    int rc = SQLITE_ROW;
    while ((rc = q.step()) == SQLITE_ROW) {
        out.push_back(endpoint{uint32_t(q.integer(0)), uint16_t(q.integer(1))});
    }
    if (rc != SQLITE_DONE) {
        return db_error(_s->db.get(), "read members");
    }
    return out;
}

result<void> gcks_store::record_registration(uint32_t group_id, const endpoint& where, const std::string& identity,
                                             std::optional<uint32_t> sender_id)
{
    return _s->transaction("PRAGMA synchronous=NORMAL", [&]() -> result<void> {
        statement q(_s->db.get(), "INSERT OR IGNORE INTO members(group_id, address, port) VALUES(?1, ?2, ?3)");
        q.bind(1, int64_t(group_id)).bind(2, int64_t(where.address)).bind(3, int64_t(where.port));
        if (result<void> r = q.run("add member"); !r || !sender_id) {
            return r;
        }
        // A plain INSERT: a Sender-ID recorded twice would be a bug, and fails loudly here.
        statement id(_s->db.get(),
                     "INSERT INTO sender_ids(group_id, sender_id, identity, address, port) VALUES(?1, ?2, ?3, ?4, ?5)");
        return id.bind(1, int64_t(group_id))
            .bind(2, int64_t(*sender_id))
            .bind(3, as_bytes(identity))
            .bind(4, int64_t(where.address))
            .bind(5, int64_t(where.port))
            .run("record Sender-ID");
    });
}

result<std::vector<sender_assignment>> gcks_store::sender_ids(uint32_t group_id) const
{
    statement q(_s->db.get(), "SELECT sender_id, identity FROM sender_ids WHERE group_id = ?1 ORDER BY sender_id");
    q.bind(1, int64_t(group_id));
    std::vector<sender_assignment> out;
    int rc = SQLITE_ROW;
    while ((rc = q.step()) == SQLITE_ROW) {
        const bytes id = q.blob(1);
        out.push_back(sender_assignment{uint32_t(q.integer(0)), std::string(id.begin(), id.end())});
    }
    if (rc != SQLITE_DONE) {
        return db_error(_s->db.get(), "read Sender-IDs");
    }
    return out;
}

} // namespace msecgw::gkm
