#include "replay.hh"

#include <algorithm>

namespace msecgw::replay {

void replay_window::reset(std::span<uint64_t> storage, uint32_t window_size)
{
    _size = round_window_size(window_size);
    _top = 0;
    _bits = storage.data();
    _words = storage_words(_size);
    if (_size == 0) {
        _mode = mode::disabled;
        return;
    }
    if (storage.size() < _words) {
        // Fail closed: a window too small for its storage must not silently accept replays.
        _mode = mode::reject_all;
        _words = 0;
        return;
    }
    _mode = mode::enabled;
    std::fill_n(_bits, _words, uint64_t{0});
}

void replay_window::advance(uint32_t seq)
{
    const uint32_t old_bucket = _top >> 6;
    const uint32_t new_bucket = seq >> 6;
    const uint32_t steps = new_bucket - old_bucket;
    if (steps >= _words) {
        std::fill_n(_bits, _words, uint64_t{0});
    } else {
        // Buckets entered for the first time may still hold bits from _words buckets ago.
        uint32_t i = old_bucket % _words;
        for (uint32_t s = 0; s < steps; ++s) {
            i = i + 1 == _words ? 0 : i + 1;
            _bits[i] = 0;
        }
    }
    _top = seq;
}

namespace {

uint32_t slot_count(uint32_t capacity)
{
    uint32_t n = replay_table::probe_limit;
    while (n < 2 * capacity) {
        n *= 2;
    }
    return n;
}

} // namespace

replay_table::replay_table(uint32_t capacity, uint32_t max_window, uint32_t seed)
    : _capacity(std::clamp(capacity, uint32_t{1}, max_capacity)),
      _max_window(round_window_size(max_window)),
      _words(storage_words(max_window)),
      _seed(seed)
{
    const uint32_t slots = slot_count(_capacity);
    _mask = slots - 1;
    _entries.resize(slots);
    _bits.resize(static_cast<size_t>(_capacity) * _words);
    _windows.resize(_capacity);
    _free.reserve(_capacity);
    for (uint32_t i = _capacity; i-- > 0;) {
        _free.push_back(i); // pop order 0, 1, 2, ...: windows fill the bit array front to back
    }
}

replay_window* replay_table::find_or_insert(const replay_key& k, uint32_t window_size)
{
    const uint32_t h = hash_key(k, _seed);
    uint32_t i = h & _mask;
    for (uint32_t p = 0; p < probe_limit; ++p, i = (i + 1) & _mask) {
        entry& e = _entries[i];
        if (e.window != no_window) {
            if (e.key == k) {
                return &_windows[e.window];
            }
            continue;
        }
        if (_free.empty()) {
            return nullptr;
        }
        const uint32_t w = _free.back();
        _free.pop_back();
        e = entry{k, w, h};
        std::span<uint64_t> storage(_bits.data() + static_cast<size_t>(w) * _words, _words);
        _windows[w].reset(storage, window_size);
        return &_windows[w];
    }
    return nullptr;
}

void replay_table::remove_at(uint32_t i)
{
    _free.push_back(_entries[i].window);
    uint32_t hole = i;
    // Backward-shift deletion: pull later members of the cluster into the hole when that does
    // not move them before their home slot. Entries only get closer to home, so every entry
    // stays within probe_limit and find() needs no tombstones.
    for (uint32_t j = (i + 1) & _mask; _entries[j].window != no_window; j = (j + 1) & _mask) {
        const uint32_t home = _entries[j].hash & _mask;
        if (((j - home) & _mask) >= ((j - hole) & _mask)) {
            _entries[hole] = _entries[j];
            hole = j;
        }
    }
    _entries[hole] = entry{};
}

uint32_t replay_table::erase_sa(uint32_t sa_slot)
{
    uint32_t erased = 0;
    for (uint32_t i = 0; i <= _mask;) {
        const entry& e = _entries[i];
        if (e.window != no_window && e.key.sa_slot == sa_slot) {
            remove_at(i); // something else may have moved into i: look at it again
            ++erased;
        } else {
            ++i;
        }
    }
    return erased;
}

} // namespace msecgw::replay
