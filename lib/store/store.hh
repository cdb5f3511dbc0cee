#pragma once
/// Persisted IV counter blocks (DESIGN.md invariant 1: never reuse a (key, nonce) pair, even
/// across kill -9). Control plane only: every call does syscalls (open, write, fsync, rename);
/// workers never call into this module.
///
/// An outbound SA's 64-bit GCM explicit IV is [Sender-ID bits][lcore index bits][counter]. Each
/// (SA, lcore index) consumes its own counter range [0, counter_limit). The control core reserves
/// blocks of counters ahead of use; reserve() persists the new high-water mark (end of the last
/// reserved block) before it returns the block, so after any crash the store continues after every
/// block that was ever handed out. Blocks reserved but not used are skipped, never reused.
///
/// The IV layout must be fixed per SA (derive the lcore bits from a configured maximum, not from
/// the current lcore count): the file records counter_limit and open() refuses a different one,
/// because shifting the lcore field would map new IVs onto ones already used.
///
/// Files in state_dir, per SA id <id> (characters [A-Za-z0-9._-], at most 128):
///   iv-<id>.store       the state (format below), replaced atomically
///   iv-<id>.store.tmp   the next state while it is written; a leftover one is a crash
///                       before the rename and is deleted by open() (the .store file wins)
///   iv-<id>.store.lock  flock()ed while an iv_store is open, so a second process (or a second
///                       iv_store in this one) cannot hand out the same counters
///
/// Write protocol: write the .tmp file, fsync it, rename it over .store, fsync state_dir.
///
/// File format v1, ASCII, every line ending in '\n', nothing else in the file:
///   msecgw-iv-store v1
///   sa <id>
///   limit <counter_limit, decimal>
///   lcore <k> <high_water, decimal>     one line per stored lcore index, k = 0, 1, ... in order
///   crc32 <8 lowercase hex digits>      CRC-32 (IEEE 802.3, as zlib) of all bytes before this line
/// Numbers are canonical decimal (no sign, no leading zeros). high_water <= limit. At least one
/// lcore line, at most max_lcores.
///
/// A missing .store file means a fresh SA: every high-water mark is 0. So restoring a host without
/// its state_dir, or deleting the file, reuses nonces of manually keyed SAs: never do that with a
/// manual key still in use (key-server SAs get fresh keys per registration). Anything else that is
/// wrong with the file is an error from open() naming the file and the problem, never a reset.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hh"

namespace msecgw::store {

/// CRC-32 (IEEE 802.3 polynomial, reflected, init and final xor 0xffffffff; zlib's crc32()).
uint32_t crc32_ieee(std::string_view bytes);

/// A reserved counter range [start, start + count).
struct iv_block {
    uint64_t start = 0;
    uint64_t count = 0;
};

/// The counter store of one outbound SA. Not thread-safe: one control-core thread uses it.
/// Move-only; owns two file descriptors (state_dir, lock file) until destroyed. The lock is an
/// flock(), released when the process dies (kill -9 included); a fork()ed child would share it.
class iv_store {
public:
    static constexpr uint32_t max_lcores = 4096;
    static constexpr size_t max_sa_id_length = 128;

    /// Opens (or starts) the store of `sa_id` in `state_dir` for `lcores` lcore indices
    /// (1..max_lcores) whose counters lie in [0, counter_limit) (counter_limit >= 1; pass
    /// 2^counter_bits, or UINT64_MAX for 64 counter bits). Creates state_dir (one level, mode 0700)
    /// when missing. Lcore indices stored in the file beyond `lcores` are kept; indices not in the
    /// file start at 0. Errors:
    ///   config_bad_value  bad sa_id, lcores or counter_limit
    ///   io                state_dir unusable, lock held by another iv_store, or the file is
    ///                     unreadable, truncated or corrupt (detail: "<path>: <what is wrong>");
    ///                     the SA must not send.
    /// `floor`: every lcore's mark is raised to at least this (clamped to counter_limit), whether
    /// the file exists or not; raising only skips counters, so IVs stay unique.
    static result<iv_store> open(const std::string& state_dir, std::string_view sa_id, uint32_t lcores,
                                 uint64_t counter_limit, uint64_t floor = 0);

    /// The highest mark of any lcore in the store file of `sa_id` (read without taking its lock),
    /// 0 when there is no such file. Errors as open() for an unreadable or corrupt file.
    static result<uint64_t> peak(const std::string& state_dir, std::string_view sa_id);

    /// Reserves the next block of `lcore` (< lcores()): start = its high-water mark, count =
    /// min(block_size, counter_limit - start) (a shorter final block), and persists start + count
    /// before returning. Errors (nothing handed out; in-memory state unchanged, retry is safe):
    ///   config_bad_value  lcore out of range or block_size 0
    ///   unsupported       counter space of this lcore exhausted: the SA must stop sending on it
    ///                     and be rekeyed (check remaining() == 0 to tell this case apart)
    ///   io                the new state could not be made durable
    result<iv_block> reserve(uint32_t lcore, uint64_t block_size);

    /// End of the last block reserved (and persisted) for `lcore`; 0 for unknown indices.
    uint64_t high_water(uint32_t lcore) const;
    /// Counters left for `lcore`: counter_limit - high_water(lcore).
    uint64_t remaining(uint32_t lcore) const { return _limit - high_water(lcore); }

    uint32_t lcores() const { return _lcores; }
    /// Lcore indices kept in the file (>= lcores() when an earlier run had more).
    uint32_t stored_lcores() const { return static_cast<uint32_t>(_high_water.size()); }
    uint64_t counter_limit() const { return _limit; }
    /// Path of the state file, for messages.
    const std::string& path() const { return _path; }

    iv_store(iv_store&& other) noexcept;
    iv_store& operator=(iv_store&& other) noexcept;
    iv_store(const iv_store&) = delete;
    iv_store& operator=(const iv_store&) = delete;
    ~iv_store();

private:
    iv_store() = default;
    void close_fds();
    /// Makes the current high-water marks durable (write-to-temp protocol).
    result<void> persist() const;

    std::string _sa_id;
    std::string _path;   ///< state_dir/iv-<id>.store
    std::string _name;   ///< iv-<id>.store, relative to _dir_fd
    int _dir_fd = -1;
    int _lock_fd = -1;
    uint32_t _lcores = 0;
    uint64_t _limit = 0;
    std::vector<uint64_t> _high_water;
};

} // namespace msecgw::store
