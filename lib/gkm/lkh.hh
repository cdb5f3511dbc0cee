#pragma once
/// Logical Key Hierarchy (RFC 2627 §5.4, Wallner et al.) for scalable group rekeying, carried as
/// RFC 9838 Appendix A key arrays. Control core only; see README.md ("LKH key tree").
///
/// The key server keeps a complete tree of arity a and depth D: every leaf is one member's
/// individual key, every inner node a key shared by the members below it, the root the group KEK.
/// A node's Key ID is its position (root 1, children of n are a·(n−1)+2 … a·(n−1)+a+1), so a new key
/// for a node keeps the node's Key ID and a member's path never changes while it is a member.
///
/// A batch of joins and leaves replaces the key of every node above a changed leaf, once. Each new
/// key is wrapped (RFC 5649) under
///   - the key of each child that still has members from before the batch (the child's new key if
///     it changed too), when a member below the node leaves — no leaver knows any of those keys;
///   - the node's previous key, when members below it only join (one wrap instead of a).
/// The array is ordered bottom-up, so a key is always wrapped under one that is unchanged or comes
/// earlier. A joiner gets its whole path by unicast (lkh_tree::member_path) and nothing old.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "crypto.hh"
#include "payloads.hh"

namespace msecgw::gkm {

/// Key ID of the root, the group KEK: the Key ID registration already gives the KEK (kwk_id_kek).
inline constexpr uint32_t lkh_root_key_id = 1;

struct lkh_config {
    unsigned arity = 2;              ///< children per inner node, 2 to 16
    uint32_t max_members = 1u << 20; ///< rounded up to arity^depth leaves; at most 2^24
    size_t key_size = 16;            ///< bytes per node key: 16 (AES-128 key wrap) or 32 (AES-256)
};

/// One key of a member's path: its node's Key ID and value.
struct lkh_path_key {
    uint32_t key_id = 0;
    secret key;
};

/// The result of one batch: what every member gets by multicast, and who joined or left.
struct lkh_rekey {
    uint32_t epoch = 0;                ///< the tree's rekey count after this batch (1, 2, …)
    std::vector<wrapped_key> keys;     ///< bottom-up key array (Key ID = new key's node, KWK ID = wrapping key's node)
    std::vector<uint32_t> joined;      ///< leaf Key IDs to send member_path() to, by unicast
    std::vector<uint32_t> left;        ///< leaf Key IDs no longer in the tree
    std::vector<uint32_t> changed;     ///< every node whose key changed or was wiped (for lkh_store)
};

/// The key server's tree.
class lkh_tree {
public:
    static result<lkh_tree> create(const lkh_config& config);

    unsigned arity() const { return _arity; }
    unsigned depth() const { return _depth; }
    size_t key_size() const { return _key_size; }
    uint32_t capacity() const { return _capacity; }
    /// Key ID of the leftmost leaf; leaves are first_leaf() … first_leaf() + capacity() − 1.
    uint32_t first_leaf() const { return _first_leaf; }
    uint32_t epoch() const { return _epoch; }
    /// Members as of the last commit.
    uint32_t members() const { return _members; }
    /// Joins and leaves waiting for commit().
    size_t pending() const { return _joining.size() + _leaving.size(); }
    /// Bytes the tree holds (keys, counts, leaf states, pending lists), for the benchmark.
    size_t memory_bytes() const;

    /// Reserves the leftmost free leaf for a new member and returns its Key ID; the member's keys
    /// exist after the next commit().
    result<uint32_t> add_member();
    /// Schedules a member's eviction for the next commit(); a join not committed yet is cancelled.
    result<void> remove_member(uint32_t leaf_id);

    /// Rekeys every node above a leaf that joined or left since the last commit, once each.
    result<lkh_rekey> commit();

    /// A committed member's keys, leaf first and the root (the group KEK) last, for its
    /// registration (unicast, wrapped under the IKE SA's GSK_w).
    result<std::vector<lkh_path_key>> member_path(uint32_t leaf_id) const;
    /// The current root key, the group KEK.
    result<secret> group_key() const;

    bool is_member(uint32_t leaf_id) const;
    /// The key of a node that has members below it (for lkh_store), or nothing.
    std::optional<byte_view> node_key(uint32_t node_id) const;
    /// Committed members' leaf Key IDs, ascending.
    std::vector<uint32_t> member_leaves() const;

    /// Rebuilds a committed tree (lkh_store) from the key of every node with members below it;
    /// the leaves among them are the members. Fails when a key is missing or does not fit.
    static result<lkh_tree> restore(const lkh_config& config, uint32_t epoch, std::span<const lkh_path_key> node_keys);

private:
    enum class leaf_state : uint8_t { free, member, joining, leaving };
    struct batch_counts {
        uint32_t joiners = 0;
        uint32_t leavers = 0;
    };

    lkh_tree(unsigned arity, unsigned depth, size_t key_size);
    bool is_leaf(uint32_t id) const { return id >= _first_leaf && id < _first_leaf + _capacity; }
    uint32_t parent(uint32_t id) const { return (id - 2) / _arity + 1; }
    uint32_t first_child(uint32_t id) const { return _arity * (id - 1) + 2; }
    std::span<uint8_t> key_slot(uint32_t id) { return _keys.mutable_view().subspan(size_t(id) * _key_size, _key_size); }
    byte_view key_of(uint32_t id) const { return _keys.view().subspan(size_t(id) * _key_size, _key_size); }
    void wipe_key(uint32_t id);
    /// Occupied or reserved leaves below an inner node, or 0/1 for a leaf.
    uint32_t load(uint32_t id) const;
    void add_load(uint32_t leaf, int32_t delta);

    unsigned _arity;
    unsigned _depth;
    size_t _key_size;
    uint32_t _capacity;    ///< leaves: arity^depth
    uint32_t _first_leaf;  ///< Key ID of the leftmost leaf
    secret _keys;          ///< key_size bytes per node, indexed by Key ID (0 unused)
    std::vector<uint32_t> _inner_load;      ///< by Key ID, for inner nodes
    std::vector<leaf_state> _leaf_states;   ///< by leaf Key ID − first leaf
    std::vector<uint32_t> _joining;
    std::vector<uint32_t> _leaving;
    uint32_t _epoch = 0;
    uint32_t _members = 0;
};

/// A rekey's key array indexed by KWK ID, decoded once and applied by any number of members.
class lkh_rekey_index {
public:
    lkh_rekey_index(uint32_t epoch, std::vector<wrapped_key> keys);
    uint32_t epoch() const { return _epoch; }
    const std::vector<wrapped_key>& keys() const { return _keys; }
    /// Positions in keys() of the keys wrapped under node kwk_id, in array order.
    std::span<const uint32_t> wrapped_under(uint32_t kwk_id) const;

private:
    uint32_t _epoch;
    std::vector<wrapped_key> _keys;
    std::vector<std::pair<uint32_t, uint32_t>> _by_kwk;  ///< (KWK ID, position), sorted
    std::vector<uint32_t> _positions;                     ///< positions in _by_kwk order
};

/// A group member's side: the keys on its path ("working key path", leaf first, root last).
class lkh_member_keys {
public:
    /// From the path its registration delivered, at the tree's epoch then.
    static result<lkh_member_keys> from_path(std::span<const lkh_path_key> path, uint32_t epoch);

    /// Derives the new path keys and root from the next rekey. Fails, keeping the old keys, when
    /// the rekey is not the next one (a missed rekey: re-register) or the member cannot derive the
    /// new root (evicted). Only keys wrapped under this member's path keys are touched.
    result<void> apply(const lkh_rekey_index& rekey);

    byte_view group_key() const { return key_at(_ids.size() - 1); }
    uint32_t leaf_id() const { return _ids.front(); }
    uint32_t epoch() const { return _epoch; }
    size_t depth() const { return _ids.size() - 1; }

private:
    lkh_member_keys(std::vector<uint32_t> ids, secret keys, size_t key_size, uint32_t epoch)
        : _ids(std::move(ids)), _keys(std::move(keys)), _key_size(key_size), _epoch(epoch)
    {
    }
    byte_view key_at(size_t level) const { return _keys.view().subspan(level * _key_size, _key_size); }

    std::vector<uint32_t> _ids;  ///< path Key IDs, leaf first
    secret _keys;                ///< key_size bytes per path entry
    size_t _key_size;
    uint32_t _epoch;
};

// ---- RFC 9838 encoding ---------------------------------------------------------------------

/// Member Key Bag attribute (private-use range) that heads each part of an LKH rekey:
/// epoch (4) ‖ part index (2) ‖ part count (2).
inline constexpr uint16_t lkh_part_attribute = 16384;
/// Member Key Bag attribute (private use) of a registration with a key tree: the tree's epoch
/// (4 bytes) at which the path keys that follow were drawn.
inline constexpr uint16_t lkh_epoch_attribute = 16385;

/// The rekey SA's KEK (AES-256-GCM key ‖ salt) derived from the tree root:
/// prf+(root, "msecgw LKH KEK", 36). Both the GCKS and members compute it after each rekey.
secret lkh_kek(byte_view root);

/// GSA_REKEY envelope around a part's KD payload: IPv4 20 + UDP 8 + IKE header 28 + SK header 4
/// + IV 8 + ICV 16 + padding 16 + AUTH (header 8, AlgorithmIdentifier 13, DER ECDSA P-256 ≤ 72).
inline constexpr size_t gsa_rekey_envelope_bytes = 193;

/// Encodes a rekey as parts: each a payload chain of one KD payload holding one Member Key Bag
/// (the part attribute, then WRAP_KEY attributes in array order) of at most max_part_bytes.
/// A GCKS sends part i in the i-th GSA_REKEY of the batch (max_part_bytes = MTU − envelope).
result<std::vector<bytes>> encode_lkh_rekey(const lkh_rekey& rekey, size_t max_part_bytes);

/// Decodes all parts of one rekey (any order; every part exactly once) into its key array.
result<lkh_rekey_index> decode_lkh_rekey(std::span<const bytes> parts);

/// A member's path for its registration (RFC 9838 Appendix A): WRAP_KEY attributes, the leaf
/// wrapped under wrap_key (KWK ID 0, the IKE SA's GSK_w), each next key under the one before it.
result<std::vector<attribute>> encode_lkh_path(std::span<const lkh_path_key> path, byte_view wrap_key);
/// Inverse of encode_lkh_path.
result<std::vector<lkh_path_key>> decode_lkh_path(const std::vector<attribute>& attrs, byte_view wrap_key);

} // namespace msecgw::gkm
