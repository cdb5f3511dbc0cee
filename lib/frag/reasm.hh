#pragma once
/// Reassembly bookkeeping for one worker lcore: which fragments of which datagram are held, and
/// when a datagram is complete, broken or stale. Fixed memory (allocated once by the control core),
/// no locks, no allocation, no system calls; the caller supplies the time (TSC cycles) and owns
/// the packets, which are opaque handles here.
///
/// Rules (RFC 791, RFC 8200 §4.5, RFC 5722): a datagram is identified by (family, protocol for
/// IPv4, identification, source, destination). Overlapping fragments abandon the whole datagram;
/// so does a second "last" fragment that disagrees on the length, or data beyond the end. An exact
/// duplicate of a held fragment is dropped alone. A datagram not complete `timeout` after its first
/// fragment is abandoned. A set of the table with no free slot refuses new datagrams until one of
/// its slots completes or expires (held datagrams are never evicted by new ones).

#include <array>
#include <cstdint>
#include <vector>

#include "common/drop_reason.hh"

struct rte_mbuf;

namespace msecgw::frag {

/// Identifies one datagram being reassembled.
struct frag_key {
    std::array<uint8_t, 32> addrs{}; ///< source then destination (IPv4: 4 + 4 bytes, rest zero)
    uint32_t id = 0;
    uint8_t family = 0;
    uint8_t proto = 0;               ///< IPv4 only; 0 for IPv6

    bool operator==(const frag_key&) const = default;
};

/// One held fragment: its packet, where its data starts in the frame, and where it goes.
struct piece {
    rte_mbuf* pkt;
    uint16_t at;      ///< frame offset of the fragment data
    uint16_t offset;  ///< byte offset in the datagram's fragmentable part
    uint16_t len;
};

inline constexpr uint16_t max_pieces = 16;

/// Fragments handed back by the table: a completed datagram in offset order, or what to drop.
struct piece_list {
    std::array<piece, max_pieces + 1> p;
    uint16_t n = 0;
};

enum class add_result : uint8_t {
    held,      ///< kept; the datagram is not complete yet
    complete,  ///< `out` holds every fragment, offset 0 first
    dropped,   ///< `out` holds the fragments to drop (this one included), `why` the reason
};

class reasm_table {
public:
    /// `datagrams` is rounded up to a multiple of the set size; `timeout` is in the caller's time unit.
    reasm_table(uint32_t datagrams, uint64_t timeout);

    add_result add(const frag_key& k, const piece& f, bool more, uint64_t now, piece_list& out, drop_reason& why);

    /// Abandons datagrams older than the timeout among the next `budget` slots (round robin);
    /// their fragments go to `out` (at most max_pieces per abandoned datagram, so `out` has room
    /// for one datagram: call again while it returns true).
    bool expire_some(uint64_t now, uint32_t budget, piece_list& out);

    /// Abandons one held datagram whatever its age (shutdown); false when none is left.
    bool release_one(piece_list& out);

    uint32_t in_use() const { return _in_use; }
    uint32_t capacity() const { return static_cast<uint32_t>(_slots.size()); }

private:
    static constexpr uint32_t ways = 4;

    struct slot {
        frag_key key;
        uint64_t first_seen = 0;
        uint32_t have = 0;   ///< data bytes held
        uint32_t total = 0;  ///< datagram data length; 0 until the last fragment arrived
        uint16_t n = 0;      ///< 0: slot free
        std::array<piece, max_pieces> pieces;
    };

    slot* find(const frag_key& k, uint64_t now, piece_list& expired);
    void release(slot& s, piece_list& out);
    add_result drop_all(slot& s, const piece& f, piece_list& out, drop_reason& why, drop_reason r);

    std::vector<slot> _slots;
    uint32_t _set_mask;
    uint64_t _timeout;
    uint64_t _seed;
    uint32_t _cursor = 0;
    uint32_t _in_use = 0;
};

} // namespace msecgw::frag
