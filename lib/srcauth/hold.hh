#pragma once
/// Building blocks shared by the TESLA and manifest verifiers: the bounded per-sender hold buffer,
/// the queue of decisions on held packets, the replay window, and the sender table. All storage is
/// allocated when a sender is added (control core); nothing here allocates afterwards.

#include "srcauth/outcome.hh"
#include "srcauth/wire.hh"

#include <array>
#include <cstdint>
#include <algorithm>
#include <memory>
#include <span>
#include <vector>

namespace msecgw::srcauth {

/// One held packet. `tag` is mode-specific: the TESLA interval, or the manifest digest.
struct held_packet {
    packet_view pkt;
    uint64_t seq;
    uint64_t arrival_ns;
    uint32_t interval;
    bool live;
    std::array<uint8_t, 16> digest;
};

/// FIFO of at most `capacity` held packets; entries may be settled out of order (then marked dead
/// and skipped). push fails when `capacity` entries are between the oldest live one and the newest.
class hold_ring {
public:
    explicit hold_ring(uint32_t capacity) : _slots(new held_packet[capacity]()), _cap(capacity) {}

    held_packet* push()
    {
        trim();
        if (_tail - _head == _cap) {
            return nullptr;
        }
        held_packet* h = &_slots[_tail++ % _cap];
        h->live = true;
        ++_live;
        return h;
    }

    void settle(held_packet& h)
    {
        h.live = false;
        --_live;
    }

    uint32_t live() const { return _live; }

    /// Calls f(held_packet&) for every live entry, oldest first.
    template <class F>
    void for_each_live(F&& f)
    {
        for (uint64_t i = _head; i < _tail; ++i) {
            held_packet& h = _slots[i % _cap];
            if (h.live) {
                f(h);
            }
        }
        trim();
    }

private:
    void trim()
    {
        while (_head < _tail && !_slots[_head % _cap].live) {
            ++_head;
        }
    }
    std::unique_ptr<held_packet[]> _slots;
    uint32_t _cap;
    uint32_t _live = 0;
    uint64_t _head = 0;
    uint64_t _tail = 0;
};

/// Decisions on held packets waiting for the caller's drain(). Its capacity is the sum of the
/// senders' hold capacities, so it cannot overflow (each held packet is settled once).
class settle_queue {
public:
    void reserve_more(uint32_t n) { _q.resize(_q.size() + n); }
    void push(const settled& s) { _q[_tail++ % _q.size()] = s; }
    uint32_t drain(std::span<settled> out)
    {
        uint32_t n = 0;
        while (_head < _tail && n < out.size()) {
            out[n++] = _q[_head++ % _q.size()];
        }
        return n;
    }
    uint64_t pending() const { return _tail - _head; }

private:
    std::vector<settled> _q;
    uint64_t _head = 0;
    uint64_t _tail = 0;
};

/// Sliding window of released sequence numbers (like ESP's, 4096 wide): a sequence number is
/// released at most once and never when it is `width` or more below the highest released. As wide
/// as the largest hold buffer (the gateway's hold_packets), so that a held packet released late (a
/// best-effort release at the hold timeout, after newer ones) is still inside it.
class seq_window {
public:
    static constexpr uint64_t width = 4096;
    static constexpr uint64_t words = width / 64;
    /// True (and records it) if seq may be released.
    bool accept(uint64_t seq)
    {
        if (_any && seq + width <= _top) {
            return false;
        }
        if (!_any || seq > _top) {
            const uint64_t shift = _any ? seq - _top : width;
            for (uint64_t i = 0; i < std::min(shift, width); ++i) {
                clear(_top + 1 + i);
            }
            _top = seq;
            _any = true;
        } else if (test(seq)) {
            return false;
        }
        set(seq);
        return true;
    }

private:
    bool test(uint64_t s) const { return (_bits[(s / 64) % words] >> (s % 64)) & 1; }
    void set(uint64_t s) { _bits[(s / 64) % words] |= uint64_t(1) << (s % 64); }
    void clear(uint64_t s) { _bits[(s / 64) % words] &= ~(uint64_t(1) << (s % 64)); }
    std::array<uint64_t, words> _bits{};
    uint64_t _top = 0;
    bool _any = false;
};

/// Senders known to one verifier, found by id (few per lcore: a scan with a last-hit cache).
template <class State>
class sender_table {
public:
    State& add(uint32_t id, State s)
    {
        _ids.push_back(id);
        _states.push_back(std::make_unique<State>(std::move(s)));
        return *_states.back();
    }
    State* find(uint32_t id)
    {
        if (_last < _ids.size() && _ids[_last] == id) {
            return _states[_last].get();
        }
        for (size_t i = 0; i < _ids.size(); ++i) {
            if (_ids[i] == id) {
                _last = i;
                return _states[i].get();
            }
        }
        return nullptr;
    }
    template <class F>
    void for_each(F&& f)
    {
        for (auto& s : _states) {
            f(*s);
        }
    }

private:
    std::vector<uint32_t> _ids;
    std::vector<std::unique_ptr<State>> _states;
    size_t _last = 0;
};

} // namespace msecgw::srcauth

namespace msecgw::srcauth {

/// Decides a held packet: a release must also pass the replay window; counts and queues the result.
/// A release with reason timeout is a best-effort release without verification.
inline void settle_held(hold_ring& hold, seq_window& window, held_packet& h, verdict v, reason why, counters& stats,
                        settle_queue& queue)
{
    if (v == verdict::release && !window.accept(h.seq)) {
        v = verdict::drop;
        why = reason::replayed_packet;
    }
    if (v == verdict::release) {
        ++(why == reason::timeout ? stats.released_unverified : stats.released);
    } else {
        ++stats.dropped[size_t(why)];
    }
    queue.push(settled{h.pkt.handle, v, why});
    hold.settle(h);
}

/// The per-packet loop every verifier shares: parse the common header, let `judge(common, view, k)`
/// decide (malformed headers are dropped here), count drops, write out[k].
template <class Judge>
void judge_each(std::span<const packet_view> in, std::span<decision> out, counters& stats, Judge&& judge)
{
    for (size_t k = 0; k < in.size() && k < out.size(); ++k) {
        wire::common c{};
        decision d{verdict::drop, reason::malformed};
        if (wire::parse_common(in[k].data, in[k].len, c)) {
            d = judge(c, in[k], k);
        }
        if (d.v == verdict::drop) {
            ++stats.dropped[size_t(d.why)];
        } else if (d.v == verdict::release) {
            ++(d.why == reason::timeout ? stats.released_unverified : stats.released); // best effort: unverified
        }
        out[k] = d;
    }
}

} // namespace msecgw::srcauth
