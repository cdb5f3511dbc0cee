#include "sqlite_db.hh"

#include <fcntl.h>
#include <unistd.h>

namespace msecgw::gkm::sqlite {

error db_error(sqlite3* db, std::string_view what)
{
    return error{errc::io, "gcks state: " + std::string(what) + ": " + sqlite3_errmsg(db)};
}

result<void> exec(sqlite3* db, const char* sql)
{
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        return db_error(db, sql);
    }
    return {};
}

result<db_ptr> open_database(const std::string& path, const char* schema)
{
    // Created owner-only before SQLite opens it; SQLite gives the -wal and -shm files the same mode.
    if (int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) {
        ::close(fd);
    }
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    db_ptr db(raw);
    if (rc != SQLITE_OK) {
        return error{errc::io, "gcks state " + path + ": cannot open"};
    }
    for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=1000", schema}) {
        if (result<void> r = exec(db.get(), sql); !r) {
            return r.err();
        }
    }
    return db;
}

result<storage_wrap> storage_wrap::create(secret storage_key)
{
    if (storage_key.size() != storage_key_size) {
        return error{errc::config_bad_value, "gcks state: storage key must be 32 bytes"};
    }
    return storage_wrap(std::move(storage_key));
}

result<secret> storage_wrap::unwrap(byte_view wrapped, std::string_view what) const
{
    result<secret> key = key_unwrap(_key.view(), wrapped);
    if (!key) {
        return error{errc::config_bad_value, "gcks state: the storage key does not open the " + std::string(what)};
    }
    return key;
}

} // namespace msecgw::gkm::sqlite
