#pragma once
/// SQLite plumbing shared by the GCKS's durable state (store.cc) and the LKH key tree
/// (lkh_store.cc), internal header: one owner-only database file in WAL mode, prepared
/// statements, transactions, and the storage key that wraps every key before it is written.
/// Not thread-safe: the GCKS's control core only.

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>

#include "crypto.hh"

namespace msecgw::gkm {
inline constexpr size_t storage_key_size = 32;
}

namespace msecgw::gkm::sqlite {

struct db_closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;

error db_error(sqlite3* db, std::string_view what);

/// Runs SQL that returns no rows.
result<void> exec(sqlite3* db, const char* sql);

/// Opens (creating owner-only, mode 0600) the database at path in WAL mode and applies schema.
result<db_ptr> open_database(const std::string& path, const char* schema);

/// One prepared statement: bind, step, read columns.
class statement {
public:
    statement(sqlite3* db, const char* sql) : _db(db) { sqlite3_prepare_v2(db, sql, -1, &_stmt, nullptr); }
    ~statement() { sqlite3_finalize(_stmt); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    statement& bind(int i, int64_t v)
    {
        _bound_ok &= _stmt != nullptr && sqlite3_bind_int64(_stmt, i, v) == SQLITE_OK;
        return *this;
    }
    statement& bind(int i, byte_view b)
    {
        _bound_ok &= _stmt != nullptr && sqlite3_bind_blob(_stmt, i, b.data(), int(b.size()), SQLITE_TRANSIENT) == SQLITE_OK;
        return *this;
    }
    /// SQLITE_ROW, SQLITE_DONE or an error code.
    int step() { return _stmt != nullptr && _bound_ok ? sqlite3_step(_stmt) : SQLITE_ERROR; }
    /// Makes the statement ready to bind and run again (bindings are replaced one by one).
    void reset()
    {
        sqlite3_reset(_stmt);
        _bound_ok = true;
    }
    int64_t integer(int col) const { return sqlite3_column_int64(_stmt, col); }
    bytes blob(int col) const
    {
        const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(_stmt, col));
        return p ? bytes(p, p + sqlite3_column_bytes(_stmt, col)) : bytes{};
    }
    /// Runs a statement that returns no rows.
    result<void> run(std::string_view what)
    {
        if (step() != SQLITE_DONE) {
            return db_error(_db, what);
        }
        return {};
    }

private:
    sqlite3* _db;
    sqlite3_stmt* _stmt = nullptr;
    bool _bound_ok = true;
};

/// BEGIN IMMEDIATE … COMMIT around body (with the given "PRAGMA synchronous=…" first), rolled
/// back when body fails.
template <class Body>
result<void> transaction(sqlite3* db, const char* synchronous, Body body)
{
    if (result<void> r = exec(db, synchronous); !r) {
        return r;
    }
    if (result<void> r = exec(db, "BEGIN IMMEDIATE"); !r) {
        return r;
    }
    result<void> r = body();
    if (!r) {
        (void)exec(db, "ROLLBACK");
        return r;
    }
    return exec(db, "COMMIT");
}

/// The storage key: keys go into the database only wrapped under it (RFC 5649).
class storage_wrap {
public:
    /// Fails unless the key is storage_key_size bytes.
    static result<storage_wrap> create(secret storage_key);
    result<bytes> wrap(byte_view key) const { return key_wrap(_key.view(), key); }
    /// what names the key in the error when the storage key does not open it.
    result<secret> unwrap(byte_view wrapped, std::string_view what) const;

private:
    explicit storage_wrap(secret storage_key) : _key(std::move(storage_key)) {}
    secret _key;
};

} // namespace msecgw::gkm::sqlite
