#pragma once
/// Durable GCKS state in SQLite (internal header): the rekey signing key, per group the current
/// TEK (SPI and keying material), the KEK, the Sender-ID reservation and the next GSA_REKEY
/// Message ID, every TEK SPI ever issued, where registered members listen and which identity got
/// which Sender-ID.
///
/// Write-ahead discipline: each value is committed before it is used, so a crash (kill -9) at
/// any point never makes the GCKS hand out an SPI, Sender-ID or Message ID twice. Sender-IDs are
/// reserved in blocks (a restart skips the rest of the block); Message IDs and SPIs are written
/// one by one, since rekeys are rare. Reservations commit with synchronous=FULL (they survive a
/// power loss); member addresses with NORMAL (they survive a process crash).
///
/// Key material (TEK, KEK, signing key) is stored only wrapped (RFC 5649) under a 256-bit storage
/// key that never enters the database. Not thread-safe: the GCKS's control core only.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto.hh"
#include "sqlite_db.hh"
#include "udp.hh"

namespace msecgw::gkm {

/// Reads the storage key: a file of 64 hex digits (whitespace ignored) or of 32 raw bytes, not
/// readable by group or others.
result<secret> load_storage_key(const std::string& path);

struct stored_group {
    uint32_t group_id = 0;
    uint32_t tek_spi = 0;
    secret tek_keymat;               ///< key ‖ salt
    secret kek;                      ///< key ‖ salt of the rekey SA
    bytes kek_spi;                   ///< 16 bytes
    uint32_t sender_id_reserved = 1; ///< Sender-IDs below this may have been handed out
    uint32_t next_rekey_message_id = 1;
};

class gcks_store {
public:
    /// Opens (creating if needed) the database at path; fails when storage_key does not open
    /// the key material already in it.
    static result<gcks_store> open(const std::string& path, secret storage_key);
    gcks_store(gcks_store&&) noexcept;
    gcks_store& operator=(gcks_store&&) noexcept;
    ~gcks_store();

    /// The stored rekey signing key (private DER), if one was saved.
    result<std::optional<secret>> signing_key_der() const;
    result<void> save_signing_key(byte_view private_der);

    result<std::optional<stored_group>> load_group(uint32_t group_id) const;
    /// Writes the whole group row and records its TEK SPI as issued, in one transaction.
    result<void> save_group(const stored_group& g);
    /// True when spi was ever issued to any group (or the lookup failed: never reuse on doubt).
    bool spi_issued(uint32_t spi) const;

    result<std::vector<endpoint>> members(uint32_t group_id) const;
    /// One registration: the member's address (rekeys go there) and, for a sender, the Sender-ID
    /// it was given (inside a block already reserved with save_group).
    result<void> record_registration(uint32_t group_id, const endpoint& where, const std::string& identity,
                                     std::optional<uint32_t> sender_id);
    struct sender_assignment {
        uint32_t sender_id = 0;
        std::string identity;
    };
    /// Every Sender-ID handed out in the group, in order.
    result<std::vector<sender_assignment>> sender_ids(uint32_t group_id) const;

private:
    struct impl;
    explicit gcks_store(std::unique_ptr<impl> s);
    std::unique_ptr<impl> _s;
};

} // namespace msecgw::gkm
