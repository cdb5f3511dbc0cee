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

struct sender_assignment {
    uint32_t sender_id = 0;
    std::string identity;
};

/// Where a GCKS keeps its state: SQLite on one machine (gcks_store), or etcd shared by several
/// key servers (etcd_store.hh). Chosen by gcks::create from the config. Every monotonic value
/// (TEK SPI, Sender-ID, GSA_REKEY Message ID) goes through claim_spi / reserve_* before use, so
/// a backend shared by several key servers can make them unique across all of them.
class gcks_state {
public:
    virtual ~gcks_state() = default;
    /// The stored rekey signing key (private DER), if one was saved.
    virtual result<std::optional<secret>> signing_key_der() const = 0;
    /// Saves the signing key. A shared backend keeps the one stored first (another key server's):
    /// callers read signing_key_der() again after saving.
    virtual result<void> save_signing_key(byte_view private_der) = 0;
    virtual result<std::optional<stored_group>> load_group(uint32_t group_id) const = 0;
    virtual result<void> save_group(const stored_group& g) = 0;
    /// Takes spi for the group: false when it was issued before (never reuse on doubt).
    virtual result<bool> claim_spi(uint32_t spi, uint32_t group_id) = 0;
    /// The group's monotonic counters besides SPIs.
    enum class counter { message_id, sender_id };
    /// `count` values of a counter (GSA_REKEY Message IDs, a block of Sender-IDs) nobody else
    /// gets; returns the first. `next`: the group's own next value (a local backend returns it
    /// and save_group commits the rest).
    virtual result<uint32_t> reserve(uint32_t group_id, counter what, uint32_t next, uint32_t count) = 0;
    virtual result<std::vector<endpoint>> members(uint32_t group_id) const = 0;
    /// One registration: the member's address (rekeys go there) and, for a sender, the Sender-ID
    /// it was given (inside a block already reserved).
    virtual result<void> record_registration(uint32_t group_id, const endpoint& where, const std::string& identity,
                                             std::optional<uint32_t> sender_id) = 0;
    /// Every Sender-ID handed out in the group, in order.
    virtual result<std::vector<sender_assignment>> sender_ids(uint32_t group_id) const = 0;
};

class gcks_store final : public gcks_state {
public:
    /// Opens (creating if needed) the database at path; fails when storage_key does not open
    /// the key material already in it.
    static result<gcks_store> open(const std::string& path, secret storage_key);
    gcks_store(gcks_store&&) noexcept;
    gcks_store& operator=(gcks_store&&) noexcept;
    ~gcks_store() override;

    result<std::optional<secret>> signing_key_der() const override;
    result<void> save_signing_key(byte_view private_der) override;

    result<std::optional<stored_group>> load_group(uint32_t group_id) const override;
    /// Writes the whole group row and records its TEK SPI as issued, in one transaction.
    result<void> save_group(const stored_group& g) override;
    /// True when spi was ever issued to any group (or the lookup failed: never reuse on doubt).
    bool spi_issued(uint32_t spi) const;
    /// !spi_issued(spi): save_group records it.
    result<bool> claim_spi(uint32_t spi, uint32_t group_id) override;
    /// Returns `next`: the group row written by save_group commits the reservation.
    result<uint32_t> reserve(uint32_t group_id, counter what, uint32_t next, uint32_t count) override;

    result<std::vector<endpoint>> members(uint32_t group_id) const override;
    result<void> record_registration(uint32_t group_id, const endpoint& where, const std::string& identity,
                                     std::optional<uint32_t> sender_id) override;
    using sender_assignment = gkm::sender_assignment;
    result<std::vector<sender_assignment>> sender_ids(uint32_t group_id) const override;

private:
    struct impl;
    explicit gcks_store(std::unique_ptr<impl> s);
    std::unique_ptr<impl> _s;
};

} // namespace msecgw::gkm
