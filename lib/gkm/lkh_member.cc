#include <algorithm>
#include <string>

#include "lkh.hh"

namespace msecgw::gkm {

lkh_rekey_index::lkh_rekey_index(uint32_t epoch, std::vector<wrapped_key> keys) : _epoch(epoch), _keys(std::move(keys))
{
    _by_kwk.reserve(_keys.size());
    for (uint32_t i = 0; i < _keys.size(); ++i) {
        _by_kwk.emplace_back(_keys[i].kwk_id, i);
    }
    std::sort(_by_kwk.begin(), _by_kwk.end());
    _positions.reserve(_by_kwk.size());
    for (const auto& entry : _by_kwk) {
        _positions.push_back(entry.second);
    }
}

std::span<const uint32_t> lkh_rekey_index::wrapped_under(uint32_t kwk_id) const
{
    auto first = std::lower_bound(_by_kwk.begin(), _by_kwk.end(), std::pair<uint32_t, uint32_t>(kwk_id, 0));
    auto last = first;
    while (last != _by_kwk.end() && last->first == kwk_id) {
        ++last;
    }
    return std::span<const uint32_t>(_positions).subspan(size_t(first - _by_kwk.begin()), size_t(last - first));
}

secret lkh_kek(byte_view root)
{
    static constexpr char label[] = "msecgw LKH KEK";
    constexpr size_t kek_bytes = 32 + gcm_salt_size;  // AES-256-GCM key ‖ salt (rekey.hh kek_key_size)
    return prf_plus(root, byte_view(reinterpret_cast<const uint8_t*>(label), sizeof label - 1), kek_bytes);
}

result<lkh_member_keys> lkh_member_keys::from_path(std::span<const lkh_path_key> path, uint32_t epoch)
{
    if (path.size() < 2 || path.back().key_id != lkh_root_key_id) {
        return make_error(reason::bad_attribute, "LKH path must run from a leaf to the root (Key ID 1)");
    }
    const size_t key_size = path.front().key.size();
    if (key_size != 16 && key_size != 32) {
        return make_error(reason::bad_length, "LKH key size " + std::to_string(key_size));
    }
    std::vector<uint32_t> ids;
    secret keys(path.size() * key_size);
    for (size_t i = 0; i < path.size(); ++i) {
        if (path[i].key.size() != key_size) {
            return make_error(reason::bad_length, "LKH path keys of different sizes");
        }
        ids.push_back(path[i].key_id);
        std::copy(path[i].key.view().begin(), path[i].key.view().end(), keys.mutable_view().begin() + i * key_size);
    }
    return lkh_member_keys(std::move(ids), std::move(keys), key_size, epoch);
}

result<void> lkh_member_keys::apply(const lkh_rekey_index& rekey)
{
    if (rekey.epoch() != _epoch + 1) {
        return make_error(reason::unexpected_payload, "LKH rekey epoch " + std::to_string(rekey.epoch()) +
                                                          " after " + std::to_string(_epoch) + ": re-register");
    }
    const size_t root = _ids.size() - 1;
    secret keys = _keys.clone();
    bool root_replaced = false;
    // Bottom-up along the path: a key wrapped under this level's key replaces this level's key
    // (same node, join below) or the parent's; array order puts the first before the second.
    for (size_t level = 0; level <= root; ++level) {
        for (uint32_t position : rekey.wrapped_under(_ids[level])) {
            const wrapped_key& wk = rekey.keys()[position];
            size_t target = level;
            if (wk.key_id != _ids[level]) {
                if (level == root || wk.key_id != _ids[level + 1]) {
                    return make_error(reason::bad_attribute, "LKH key " + std::to_string(wk.key_id) + " wrapped under " +
                                                                 std::to_string(wk.kwk_id) + " is off this member's path");
                }
                target = level + 1;
            }
            result<secret> key = key_unwrap(keys.view().subspan(level * _key_size, _key_size), wk.wrapped);
            if (!key || key->size() != _key_size) {
                return make_error(reason::integrity, "LKH key " + std::to_string(wk.key_id) +
                                                         " does not unwrap: no longer a member, or a rekey was missed");
            }
            std::copy(key->view().begin(), key->view().end(), keys.mutable_view().begin() + target * _key_size);
            root_replaced |= target == root;
        }
    }
    if (!root_replaced) {
        return make_error(reason::missing_payload, "LKH rekey has no new root key for leaf " +
                                                       std::to_string(_ids.front()) + ": not a member");
    }
    _keys = std::move(keys);
    _epoch = rekey.epoch();
    return {};
}

} // namespace msecgw::gkm
