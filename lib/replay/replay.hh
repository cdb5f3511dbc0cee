#pragma once
/// Inbound anti-replay (RFC 4303 §3.4.3): one sliding window per (SA, source), DESIGN.md
/// invariant 2. Every window lives on the one worker lcore that owns its (SA, source), so nothing
/// here is atomic or locked, and nothing allocates after construction.
///
/// Group SAs (RFC 5374, RFC 6054) have no ESN: sequence numbers are plain 32-bit values, 0 is never
/// valid, and a new window is empty (its first packet, whatever its number >= 1, sets the right
/// edge). Use is two-phase, as in DPDK lib/ipsec: `check()` before decryption (cheap rejection,
/// no state change) and `update()` only after the ICV verified, so forged packets never move the
/// window. `update()` checks again, which catches a duplicate inside one burst.
///
/// Bitmap storage (design choice): a window does not own its bits; it works on a caller-provided
/// span of `storage_words(W)` uint64_t words (W/64 + 1: the extra word lets the right edge move
/// into a new 64-bit bucket without forgetting the W numbers behind it). The words form a ring
/// indexed by (seq / 64) mod words. `replay_table` carves all its windows out of one array
/// allocated at construction.

#include <nmmintrin.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace msecgw::replay {

/// Outcome of a replay check. Everything but `ok` means drop (and count).
enum class verdict : uint8_t {
    ok,       ///< new, or inside the window and not seen yet
    replayed, ///< inside the window and already accepted
    too_old,  ///< left of the window (or the window rejects everything, see replay_window::reset)
    zero,     ///< sequence number 0 is never sent (RFC 4303 §3.3.3)
};

constexpr std::string_view to_string(verdict v)
{
    switch (v) {
    case verdict::ok: return "ok";
    case verdict::replayed: return "replayed";
    case verdict::too_old: return "too_old";
    case verdict::zero: return "zero";
    }
    return "unknown";
}

inline constexpr uint32_t max_window_size = 65536;

/// The window size actually used for a requested size: 0 stays 0 (disabled), 1..65536 is rounded
/// up to a multiple of 64, larger requests are clamped to 65536 (config validation rejects them).
constexpr uint32_t round_window_size(uint32_t requested)
{
    if (requested > max_window_size) {
        return max_window_size;
    }
    return (requested + 63) / 64 * 64;
}

/// Number of uint64_t words a window of `window_size` packets needs (0 when disabled).
constexpr uint32_t storage_words(uint32_t window_size)
{
    const uint32_t w = round_window_size(window_size);
    return w == 0 ? 0 : w / 64 + 1;
}

/// One anti-replay window. Not thread-safe: only the owning worker lcore calls check()/update();
/// reset() runs on that lcore too, or on the control core before the window is published.
/// A default-constructed window is disabled.
class replay_window {
public:
    replay_window() = default;
    replay_window(std::span<uint64_t> storage, uint32_t window_size) { reset(storage, window_size); }

    /// (Re)initialises an empty window of round_window_size(window_size) packets over `storage`,
    /// clearing the words it uses. `storage` must outlive the window. Size 0 disables the window:
    /// every sequence number, even 0, is then `ok` (benchmarks only). If `storage` holds fewer than
    /// storage_words(window_size) words the window fails closed: every packet is `too_old`.
    void reset(std::span<uint64_t> storage, uint32_t window_size);

    /// Verdict for `seq` without changing the window. Call before decryption.
    verdict check(uint32_t seq) const
    {
        if (_mode != mode::enabled) {
            return _mode == mode::disabled ? verdict::ok : verdict::too_old;
        }
        if (seq == 0) {
            return verdict::zero;
        }
        if (seq > _top) {
            return verdict::ok;
        }
        if (_top - seq >= _size) {
            return verdict::too_old;
        }
        return (_bits[slot(seq)] >> (seq & 63)) & 1 ? verdict::replayed : verdict::ok;
    }

    /// Checks `seq` again and, when `ok`, records it (moving the right edge when seq is new).
    /// Call only after the packet's ICV verified. Returns the verdict; anything but `ok` left the
    /// window unchanged and means drop.
    verdict update(uint32_t seq)
    {
        const verdict v = check(seq);
        if (v != verdict::ok || _mode != mode::enabled) {
            return v;
        }
        if (seq > _top) {
            advance(seq);
        }
        _bits[slot(seq)] |= uint64_t{1} << (seq & 63);
        return verdict::ok;
    }

    /// Window size in packets (a multiple of 64), 0 when disabled.
    uint32_t size() const { return _size; }
    /// Right edge: the highest sequence number accepted so far, 0 while the window is empty.
    uint32_t top() const { return _top; }
    bool enabled() const { return _mode == mode::enabled; }

private:
    enum class mode : uint8_t { disabled, enabled, reject_all };

    uint32_t slot(uint32_t seq) const { return (seq >> 6) % _words; }
    void advance(uint32_t seq);

    uint64_t* _bits = nullptr;
    uint32_t _words = 0; ///< ring length, size/64 + 1
    uint32_t _size = 0;
    uint32_t _top = 0;
    mode _mode = mode::disabled;
};

/// Identifies one window: SA slot (the data plane's SA index) and the packet's outer source
/// address. IPv4 addresses sit in the first 4 bytes with the other 12 zero; build keys with v4()
/// and v6() so equal sources always give equal keys.
struct replay_key {
    std::array<uint8_t, 16> addr{};
    uint32_t sa_slot = 0;
    uint8_t family = 0; ///< 4 or 6, as packet::pkt_meta::family

    static replay_key v4(uint32_t sa_slot, const uint8_t* addr4)
    {
        replay_key k;
        std::memcpy(k.addr.data(), addr4, 4);
        k.sa_slot = sa_slot;
        k.family = 4;
        return k;
    }
    static replay_key v6(uint32_t sa_slot, const uint8_t* addr16)
    {
        replay_key k;
        std::memcpy(k.addr.data(), addr16, 16);
        k.sa_slot = sa_slot;
        k.family = 6;
        return k;
    }
    bool operator==(const replay_key&) const = default;
};

/// Hash of a key (design choice): CRC32-C (SSE4.2, in the -march=x86-64-v3 baseline) over the 16
/// address bytes and slot|family, seeded. Keys are inserted only after an ICV verified, so only
/// group members choose them; CRC's linearity is not a flooding risk.
inline uint32_t hash_key(const replay_key& k, uint32_t seed)
{
    uint64_t lo;
    uint64_t hi;
    std::memcpy(&lo, k.addr.data(), 8);
    std::memcpy(&hi, k.addr.data() + 8, 8);
    uint64_t h = _mm_crc32_u64(seed, lo);
    h = _mm_crc32_u64(h, hi);
    h = _mm_crc32_u64(h, uint64_t{k.sa_slot} | uint64_t{k.family} << 32);
    return static_cast<uint32_t>(h);
}

/// Per-lcore map (SA slot, source) -> replay_window with a fixed capacity, built on the control
/// core and then handed to its worker. Open addressing with linear probing over a power-of-two
/// slot array at least twice the capacity, and at most `probe_limit` probes; every window's bits
/// come from one array sized capacity * storage_words(max_window_size). Nothing allocates after
/// construction.
///
/// Threading: not thread-safe. After hand-over only the owning worker calls find(),
/// find_or_insert() and check(); erase_sa() must not run concurrently with them (see there).
///
/// Data-path flow: before decryption `check(key, seq)` (an absent window counts as empty, so it
/// inserts nothing: unauthenticated packets cannot fill the table); after the ICV verified
/// `find_or_insert(key, W)` then `update(seq)`. nullptr from find_or_insert means the table is
/// full (or the probe limit is reached): drop the packet and count it. SAs with window size 0 need
/// no entries at all.
class replay_table {
public:
    static constexpr uint32_t probe_limit = 32;
    static constexpr uint32_t max_capacity = uint32_t{1} << 24;

    /// Control core. `capacity` windows (clamped to 1..max_capacity), each able to hold up to
    /// `max_window` packets (rounded as round_window_size). `seed` perturbs the hash.
    replay_table(uint32_t capacity, uint32_t max_window, uint32_t seed = 0);

    replay_table(const replay_table&) = delete;
    replay_table& operator=(const replay_table&) = delete;
    replay_table(replay_table&&) = default;
    replay_table& operator=(replay_table&&) = default;

    /// The window of `k`, or nullptr when there is none. Owning worker.
    replay_window* find(const replay_key& k)
    {
        uint32_t i = hash_key(k, _seed) & _mask;
        for (uint32_t p = 0; p < probe_limit; ++p, i = (i + 1) & _mask) {
            const entry& e = _entries[i];
            if (e.window == no_window) {
                return nullptr;
            }
            if (e.key == k) {
                return &_windows[e.window];
            }
        }
        return nullptr;
    }

    /// Pre-decryption check: the window's verdict, or that of an empty window when `k` has none
    /// (`zero` for seq 0, `ok` otherwise). Owning worker.
    verdict check(const replay_key& k, uint32_t seq)
    {
        const replay_window* w = find(k);
        if (w != nullptr) {
            return w->check(seq);
        }
        return seq == 0 ? verdict::zero : verdict::ok;
    }

    /// The window of `k`, creating an empty one of `window_size` packets when absent; nullptr when
    /// all windows are in use or no free slot is within the probe limit. A window_size above
    /// max_window_size() gives a window that rejects everything (validate config against it).
    /// An existing window keeps its size. Owning worker; never allocates.
    replay_window* find_or_insert(const replay_key& k, uint32_t window_size);

    /// Removes every window of SA slot `sa_slot` and returns how many; O(slots). Contract: no
    /// other call on this table may run at the same time, so either the owning worker runs it
    /// itself (e.g. on a "retire SA" ring message, between bursts) or the control core runs it
    /// while that worker is parked. Run it before the slot is reused for another SA, or the new
    /// SA inherits the old windows.
    uint32_t erase_sa(uint32_t sa_slot);

    uint32_t size() const { return _capacity - static_cast<uint32_t>(_free.size()); }
    uint32_t capacity() const { return _capacity; }
    uint32_t max_window_size() const { return _max_window; }

private:
    static constexpr uint32_t no_window = UINT32_MAX;

    struct entry {
        replay_key key;
        uint32_t window = no_window; ///< index into _windows; no_window = empty slot
        uint32_t hash = 0;           ///< cached for backward-shift deletion
    };

    void remove_at(uint32_t i);

    std::vector<entry> _entries;
    std::vector<replay_window> _windows;
    std::vector<uint64_t> _bits;
    std::vector<uint32_t> _free; ///< stack of unused window indices, reserved to capacity
    uint32_t _mask = 0;
    uint32_t _capacity = 0;
    uint32_t _max_window = 0;
    uint32_t _words = 0; ///< storage words per window
    uint32_t _seed = 0;
};

} // namespace msecgw::replay
