#include "lkh.hh"

#include <algorithm>
#include <string>
#include <unordered_map>

namespace msecgw::gkm {

namespace {

constexpr uint64_t max_capacity = uint64_t{1} << 26;

error config_error(const std::string& what)
{
    return error{errc::config_bad_value, "lkh: " + what};
}

} // namespace

lkh_tree::lkh_tree(unsigned arity, unsigned depth, size_t key_size)
    : _arity(arity), _depth(depth), _key_size(key_size), _capacity(1), _first_leaf(1)
{
    uint64_t level_width = 1;
    uint64_t inner = 0;
    for (unsigned d = 0; d < depth; ++d) {
        inner += level_width;
        level_width *= arity;
    }
    _capacity = uint32_t(level_width);
    _first_leaf = uint32_t(inner + 1);
    _keys = secret((size_t(_first_leaf) + _capacity) * key_size);
    _inner_load.assign(_first_leaf, 0);
    _leaf_states.assign(_capacity, leaf_state::free);
}

result<lkh_tree> lkh_tree::create(const lkh_config& config)
{
    if (config.arity < 2 || config.arity > 16) {
        return config_error("arity " + std::to_string(config.arity) + " (need 2 to 16)");
    }
    if (config.key_size != 16 && config.key_size != 32) {
        return config_error("key size " + std::to_string(config.key_size) + " (need 16 or 32)");
    }
    if (config.max_members < 2) {
        return config_error("max_members must be at least 2");
    }
    unsigned depth = 1;
    for (uint64_t leaves = config.arity; leaves < config.max_members; leaves *= config.arity) {
        ++depth;
    }
    uint64_t capacity = 1;
    for (unsigned d = 0; d < depth; ++d) {
        capacity *= config.arity;
    }
    if (capacity > max_capacity) {
        return config_error("max_members " + std::to_string(config.max_members) + " rounds up to " +
                            std::to_string(capacity) + " leaves (at most 2^26)");
    }
    return lkh_tree(config.arity, depth, config.key_size);
}

size_t lkh_tree::memory_bytes() const
{
    return _keys.size() + _inner_load.capacity() * sizeof(uint32_t) + _leaf_states.capacity() +
           (_joining.capacity() + _leaving.capacity()) * sizeof(uint32_t);
}

uint32_t lkh_tree::load(uint32_t id) const
{
    return is_leaf(id) ? uint32_t(_leaf_states[id - _first_leaf] != leaf_state::free) : _inner_load[id];
}

void lkh_tree::add_load(uint32_t leaf, int32_t delta)
{
    for (uint32_t n = leaf; n != lkh_root_key_id;) {
        n = parent(n);
        _inner_load[n] = uint32_t(int64_t(_inner_load[n]) + delta);
    }
}

void lkh_tree::wipe_key(uint32_t id)
{
    std::span<uint8_t> slot = key_slot(id);
    std::fill(slot.begin(), slot.end(), uint8_t{0});
}

bool lkh_tree::is_member(uint32_t leaf_id) const
{
    return is_leaf(leaf_id) && _leaf_states[leaf_id - _first_leaf] == leaf_state::member;
}

result<uint32_t> lkh_tree::add_member()
{
    if (_inner_load[lkh_root_key_id] >= _capacity) {
        return config_error("the tree is full (" + std::to_string(_capacity) + " leaves)");
    }
    // Leftmost leaf with room: members stay packed, so a small group's paths share nodes.
    uint32_t n = lkh_root_key_id;
    uint64_t span = _capacity;
    while (!is_leaf(n)) {
        span /= _arity;
        const uint32_t first = first_child(n);
        for (uint32_t c = first; c < first + _arity; ++c) {
            if (load(c) < span) {
                n = c;
                break;
            }
        }
    }
    _leaf_states[n - _first_leaf] = leaf_state::joining;
    add_load(n, +1);
    _joining.push_back(n);
    return n;
}

result<void> lkh_tree::remove_member(uint32_t leaf_id)
{
    if (!is_leaf(leaf_id)) {
        return config_error("Key ID " + std::to_string(leaf_id) + " is not a leaf");
    }
    leaf_state& state = _leaf_states[leaf_id - _first_leaf];
    switch (state) {
    case leaf_state::member:
        state = leaf_state::leaving;
        _leaving.push_back(leaf_id);
        return {};
    case leaf_state::joining:
        // It never got a key: nothing to protect.
        state = leaf_state::free;
        add_load(leaf_id, -1);
        std::erase(_joining, leaf_id);
        return {};
    default:
        return config_error("leaf " + std::to_string(leaf_id) + " has no member");
    }
}

result<lkh_rekey> lkh_tree::commit()
{
    if (pending() == 0) {
        return config_error("nothing to rekey: no join or leave since the last commit");
    }
    struct changed_node {
        batch_counts counts;
        uint32_t staged = 0;  ///< index of its new key in `staged`
    };
    std::unordered_map<uint32_t, changed_node> changed;
    changed.reserve(pending() * _depth);
    for (uint32_t leaf : _joining) {
        for (uint32_t n = leaf; n != lkh_root_key_id;) {
            n = parent(n);
            ++changed[n].counts.joiners;
        }
    }
    for (uint32_t leaf : _leaving) {
        for (uint32_t n = leaf; n != lkh_root_key_id;) {
            n = parent(n);
            ++changed[n].counts.leavers;
        }
    }
    // Children have higher Key IDs than their parents: descending order is bottom-up.
    std::vector<uint32_t> order;
    order.reserve(changed.size());
    for (const auto& entry : changed) {
        order.push_back(entry.first);
    }
    std::sort(order.begin(), order.end(), std::greater<>());
    for (uint32_t i = 0; i < order.size(); ++i) {
        changed[order[i]].staged = i;
    }

    // New keys are staged, so a failure leaves the tree as it was.
    secret staged(order.size() * _key_size);
    std::vector<bool> stays_empty(order.size(), false);
    auto staged_key = [&](uint32_t i) { return staged.mutable_view().subspan(size_t(i) * _key_size, _key_size); };
    auto continuing = [&](uint32_t id) -> uint32_t {
        if (is_leaf(id)) {
            return uint32_t(_leaf_states[id - _first_leaf] == leaf_state::member);
        }
        auto it = changed.find(id);
        return _inner_load[id] - (it == changed.end() ? 0 : it->second.counts.joiners + it->second.counts.leavers);
    };
    auto current_key = [&](uint32_t id) -> byte_view {
        auto it = changed.find(id);
        return it == changed.end() ? key_of(id) : byte_view(staged_key(it->second.staged));
    };

    lkh_rekey out;
    out.epoch = _epoch + 1;
    for (uint32_t i = 0; i < order.size(); ++i) {
        const uint32_t n = order[i];
        const batch_counts& b = changed[n].counts;
        if (_inner_load[n] == b.leavers) {
            stays_empty[i] = true;
            continue;
        }
        random_fill(staged_key(i));
        const byte_view fresh = staged_key(i);
        if (_inner_load[n] == b.joiners + b.leavers) {
            continue;  // only joiners below: they get this key with their path
        }
        auto wrap_under = [&](uint32_t kwk_id, byte_view kwk) -> result<void> {
            result<bytes> wrapped = key_wrap(kwk, fresh);
            if (!wrapped) {
                return wrapped.err();
            }
            out.keys.push_back(wrapped_key{n, kwk_id, std::move(*wrapped)});
            return {};
        };
        if (b.leavers == 0) {
            // Everyone below already holds this node's previous key and nobody below leaves.
            if (result<void> r = wrap_under(n, key_of(n)); !r) {
                return r.err();
            }
            continue;
        }
        const uint32_t first = first_child(n);
        for (uint32_t c = first; c < first + _arity; ++c) {
            if (continuing(c) == 0) {
                continue;
            }
            if (result<void> r = wrap_under(c, current_key(c)); !r) {
                return r.err();
            }
        }
    }

    // Nothing below can fail: apply the batch.
    for (uint32_t i = 0; i < order.size(); ++i) {
        const uint32_t n = order[i];
        if (stays_empty[i]) {
            wipe_key(n);
        } else {
            std::span<uint8_t> fresh = staged_key(i);
            std::copy(fresh.begin(), fresh.end(), key_slot(n).begin());
        }
        out.changed.push_back(n);
    }
    for (uint32_t leaf : _joining) {
        random_fill(key_slot(leaf));
        _leaf_states[leaf - _first_leaf] = leaf_state::member;
        out.joined.push_back(leaf);
        out.changed.push_back(leaf);
    }
    for (uint32_t leaf : _leaving) {
        wipe_key(leaf);
        _leaf_states[leaf - _first_leaf] = leaf_state::free;
        add_load(leaf, -1);
        out.left.push_back(leaf);
        out.changed.push_back(leaf);
    }
    _members = _members + uint32_t(_joining.size()) - uint32_t(_leaving.size());
    _epoch = out.epoch;
    _joining.clear();
    _leaving.clear();
    return out;
}

result<std::vector<lkh_path_key>> lkh_tree::member_path(uint32_t leaf_id) const
{
    if (!is_member(leaf_id)) {
        return config_error("leaf " + std::to_string(leaf_id) + " has no committed member");
    }
    std::vector<lkh_path_key> path;
    path.reserve(_depth + 1);
    for (uint32_t n = leaf_id;; n = parent(n)) {
        path.push_back(lkh_path_key{n, secret(key_of(n))});
        if (n == lkh_root_key_id) {
            break;
        }
    }
    return path;
}

result<secret> lkh_tree::group_key() const
{
    if (_members == 0) {
        return config_error("no member: no group key");
    }
    return secret(key_of(lkh_root_key_id));
}

std::optional<byte_view> lkh_tree::node_key(uint32_t node_id) const
{
    if (node_id == 0 || node_id >= _first_leaf + _capacity) {
        return std::nullopt;
    }
    if (is_leaf(node_id) ? !is_member(node_id) : _inner_load[node_id] == 0) {
        return std::nullopt;
    }
    return key_of(node_id);
}

std::vector<uint32_t> lkh_tree::member_leaves() const
{
    std::vector<uint32_t> out;
    out.reserve(_members);
    for (uint32_t i = 0; i < _capacity; ++i) {
        if (_leaf_states[i] == leaf_state::member) {
            out.push_back(_first_leaf + i);
        }
    }
    return out;
}

result<lkh_tree> lkh_tree::restore(const lkh_config& config, uint32_t epoch, std::span<const lkh_path_key> node_keys)
{
    result<lkh_tree> created = create(config);
    if (!created) {
        return created.err();
    }
    lkh_tree& t = *created;
    for (const lkh_path_key& k : node_keys) {
        if (t.is_leaf(k.key_id) && t._leaf_states[k.key_id - t._first_leaf] == leaf_state::free) {
            t._leaf_states[k.key_id - t._first_leaf] = leaf_state::member;
            t.add_load(k.key_id, +1);
            ++t._members;
        }
    }
    std::vector<bool> has_key(size_t(t._first_leaf) + t._capacity, false);
    for (const lkh_path_key& k : node_keys) {
        if (!t.node_key(k.key_id) || k.key.size() != t._key_size) {
            return config_error("stored key of node " + std::to_string(k.key_id) + " does not fit the tree");
        }
        std::copy(k.key.view().begin(), k.key.view().end(), t.key_slot(k.key_id).begin());
        has_key[k.key_id] = true;
    }
    for (uint32_t id = 1; id < has_key.size(); ++id) {
        if (t.node_key(id) && !has_key[id]) {
            return config_error("no stored key for node " + std::to_string(id));
        }
    }
    t._epoch = epoch;
    return created;
}

} // namespace msecgw::gkm
