#pragma once
/// The gateway's YAML configuration (DESIGN.md §5 contract), parsed and validated on the control
/// core. Every error names file, line and key in one line. Nothing here runs on a worker lcore.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <utility>

#include "common/result.hh"

namespace msecgw::config {

enum class ip_family : uint8_t { any, v4, v6 };

/// An address prefix; `any` (family any, length 0) matches both families.
struct ip_prefix {
    ip_family family = ip_family::any;
    std::array<uint8_t, 16> addr{}; ///< network byte order; IPv4 in the first 4 bytes
    uint8_t length = 0;             ///< prefix length in bits

    bool is_any() const { return family == ip_family::any; }
    bool operator==(const ip_prefix&) const = default;
};

/// Inclusive range of 16-bit values (ports, VLAN ids).
struct u16_range {
    uint16_t lo = 0;
    uint16_t hi = 0xffff;
    bool operator==(const u16_range&) const = default;
};

/// Key value of an untagged frame in VLAN matches (802.1Q ids are 0..4095).
inline constexpr uint16_t vlan_untagged = 4096;

enum class port_side : uint8_t { clear, protected_side };
enum class direction : uint8_t { out, in };
enum class aead_alg : uint8_t { aes_128_gcm, aes_256_gcm };
enum class policy_action : uint8_t { protect, bypass, discard };

std::string_view to_string(port_side s);
std::string_view to_string(direction d);
std::string_view to_string(aead_alg a);
std::string_view to_string(policy_action a);
std::string to_string(const ip_prefix& p); ///< "239.0.0.0/8", "ff00::/8", "any"

struct port_cfg {
    uint16_t port = 0;
    port_side side = port_side::clear;
    uint16_t mtu = 1500; ///< IP MTU of the link (bytes of IP packet, without L2 header)
    uint16_t region = 0; ///< index into gateway_cfg::regions (0: the first, or the implicit one)
    int line = 0;
};

/// How ports pair (rx on one, tx on the other, both ways): the k-th clear port with the k-th
/// protected port (edge), then the protected ports left over in twos (boundary: the two must be
/// in different regions). Indexes into `sides`; empty when the sides do not pair (`why` says how).
std::vector<std::pair<std::size_t, std::size_t>> port_pairs(const std::vector<port_side>& sides, std::string& why);

/// Key material that zeroes itself when destroyed (never logged, never printed).
class secret_bytes {
public:
    secret_bytes() = default;
    explicit secret_bytes(std::vector<uint8_t> bytes) : _bytes(std::move(bytes)) {}
    secret_bytes(const secret_bytes&) = default;
    /// Assignments zero the bytes they replace before releasing them.
    secret_bytes& operator=(const secret_bytes& other);
    secret_bytes(secret_bytes&&) = default;
    secret_bytes& operator=(secret_bytes&& other) noexcept;
    ~secret_bytes();

    const std::vector<uint8_t>& bytes() const { return _bytes; }
    std::size_t size() const { return _bytes.size(); }

private:
    std::vector<uint8_t> _bytes;
};

/// SA lifetime limits (RFC 4301 §4.4.2.1); 0 = no limit.
struct sa_lifetime {
    uint64_t packets = 0;
    uint64_t bytes = 0;   ///< bytes of inner IP packets
    uint64_t seconds = 0; ///< since the SA was installed
    bool operator==(const sa_lifetime&) const = default;
};

enum class source_auth_mode : uint8_t { tesla, manifest, sign };
std::string_view to_string(source_auth_mode m);

/// A sender a verifier trusts: packets whose inner source lies in `sender` must carry a tag that
/// verifies under the public key in `public_key` (PEM file).
struct trust_cfg {
    ip_prefix sender;
    std::string public_key;
    int line = 0;
    bool operator==(const trust_cfg&) const = default;
};

/// Source authentication of one protection (an SA, or a group's SAs): docs/source-auth.md.
struct source_auth_cfg {
    source_auth_mode mode = source_auth_mode::tesla;
    // tesla
    uint32_t interval_ms = 100;            ///< TESLA interval length
    uint32_t disclosure_delay = 2;         ///< intervals until a key is disclosed
    uint32_t clock_offset_bound_ms = 20;   ///< how far the sender's clock may be ahead of the verifier's
    uint32_t chain_length = 36000;         ///< intervals of one key chain (the sender stops at its end)
    uint32_t bootstrap_period_ms = 1000;   ///< signed bootstrap resent this often
    // manifest
    uint32_t manifest_packets = 64;        ///< N: digests per manifest
    uint32_t manifest_max_age_ms = 20;     ///< T: a manifest goes out at the latest this long after its first packet
    bool best_effort = false;              ///< verifier: release at timeout instead of drop
    bool sign_on_worker = false;           ///< sender: manifests signed by the worker, not the signing thread
    // sender / verifier
    std::string signing_key;               ///< sender: PEM private key (Ed25519 or ECDSA P-256)
    int signing_key_line = 0;
    std::vector<trust_cfg> trust;          ///< verifier: trust anchors by source prefix
    uint32_t hold_packets = 1024;          ///< verifier: packets held per sender
    uint32_t hold_timeout_ms = 0;          ///< verifier: 0 = the mode's default (docs/source-auth.md)
    uint16_t slot = 0;                     ///< index among the configuration's source_auth blocks
    std::string where;                     ///< "sas[0].source_auth" (messages)
    int line = 0;
    bool operator==(const source_auth_cfg&) const = default;
};

struct sa_cfg {
    std::string name;
    direction dir = direction::out;
    uint32_t spi = 0;
    aead_alg aead = aead_alg::aes_128_gcm;
    secret_bytes key;                ///< RFC 4106 keying material: key bytes then 4-byte salt
    std::optional<ip_prefix> dst;    ///< inbound SAD match on outer dst; nullopt = any (also when written `any`)
    std::optional<ip_prefix> src;    ///< inbound SAD match on outer src; nullopt = any (also when written `any`)
    uint32_t replay_window = 1024;   ///< packets; 0 = off
    sa_lifetime soft;                ///< past any limit: counted and logged (time to rekey)
    sa_lifetime hard;                ///< past any limit: the SA stops (sa_expired)
    /// RFC 6054 Sender-ID of an outbound SA: the IV's top `sender_id_bits` bits carry `sender_id`
    /// (< 2^sender_id_bits). 0 bits = no Sender-ID; inbound SAs always have 0/0.
    uint32_t sender_id = 0;
    uint8_t sender_id_bits = 0;      ///< 0..max_sender_id_bits
    /// Set on SAs the gateway made from a group's keys (key server), never read from a file.
    std::string group;
    /// Source authentication of this SA's packets (from the SA entry or its group); null = none.
    std::shared_ptr<const source_auth_cfg> source_auth;
    uint16_t region = 0;             ///< index into gateway_cfg::regions: whose SAD/policies use it
    int line = 0;
};

/// Widest Sender-ID (RFC 6054 uses 8, 12 or 16 bits); the IV keeps 6 lane bits and a 32-bit counter below it.
inline constexpr uint8_t max_sender_id_bits = 16;

struct policy_cfg {
    direction dir = direction::out;
    ip_prefix src;                   ///< default any
    ip_prefix dst;                   ///< default any
    std::optional<uint8_t> proto;    ///< nullopt = any protocol
    u16_range sport;                 ///< only meaningful with proto udp/tcp/sctp
    u16_range dport;
    u16_range vlan;                  ///< VLAN id range; vlan_untagged matches untagged frames
    policy_action action = policy_action::discard;
    std::string sa;                  ///< name of the SA for protect (or empty with `group`)
    /// protect with the keys of this group (from the key server, see member_cfg): the gateway
    /// names the group's current SAs here at run time; until the first key arrives, outbound
    /// packets are dropped as no_group_key.
    std::string group;
    /// A copy of the `group` policy above it, made at run time to name the group's previous
    /// inbound SA while two overlap (make-before-break); never read from a file.
    bool twin = false;
    uint16_t region = 0;             ///< index into gateway_cfg::regions: whose table holds this rule
    int line = 0;

    /// Families this rule applies to: both when src and dst are `any`.
    bool applies_to(ip_family f) const;
};

/// Inbound reassembly of ESP fragments, per worker lcore.
struct reassembly_cfg {
    uint32_t timeout_ms = 2000;      ///< an incomplete datagram is dropped (frag_timeout) after this
    uint32_t max_datagrams = 1024;   ///< datagrams one worker reassembles at once
};

/// An IPv4 UDP endpoint of the key-management protocol (G-IKEv2 runs on kernel sockets).
struct udp_endpoint {
    std::string address = "127.0.0.1"; ///< dotted quad
    uint16_t port = 848;               ///< RFC 9838 §2: G-IKEv2 uses UDP port 848
    bool operator==(const udp_endpoint&) const = default;
};

/// A multicast group under key management (RFC 9838). The key server reads all of it; a member
/// reads name, id, dst (its inbound SAD match) and replay_window.
struct group_cfg {
    std::string name;                   ///< what policies name (`group: NAME`)
    uint32_t id = 0;                    ///< G-IKEv2 group id (IDg, ID_KEY_ID of 4 bytes)
    ip_prefix src;                      ///< TEK traffic selectors (default any)
    ip_prefix dst;
    aead_alg aead = aead_alg::aes_128_gcm;  ///< TEK algorithm (key server)
    uint32_t tek_lifetime_seconds = 3600;   ///< key server
    uint32_t rekey_period_seconds = 0;      ///< key server: new TEK this often; 0 = on demand only
    uint32_t registration_overlap_ms = 1000; ///< key server: registrants get the previous TEK this long after a rekey
    uint8_t sender_id_bits = 16;            ///< key server: RFC 6054 Sender-ID width
    std::vector<std::string> members;       ///< key server: identities that may join
    std::vector<std::string> senders;       ///< key server: identities that may send (get a Sender-ID)
    uint32_t replay_window = 1024;          ///< this gateway's inbound SAs of the group
    // [E2] key server: LKH key tree and GSA_REKEY delivery (lib/gkm/README.md "Key tree in the protocol")
    bool key_tree = false;                  ///< LKH tree: evictions take effect at the next batch
    uint32_t lkh_arity = 2;
    uint32_t lkh_max_members = 4096;
    uint32_t rekey_batch_ms = 0;            ///< joins and leaves collected this long
    std::optional<udp_endpoint> rekey_address;  ///< IPv4 multicast group for GSA_REKEY; unset: unicast
    uint32_t rekey_ttl = 1;
    std::string rekey_interface;            ///< IP_MULTICAST_IF address; empty: the listen address
    std::shared_ptr<const source_auth_cfg> source_auth; ///< carried to the group's SAs (key_manager::expand)
    /// index into gateway_cfg::regions: the region whose key server keys this group; its SAs and
    /// the policies naming it are in that region
    uint16_t region = 0;
    int line = 0;
};

/// A pre-shared key the key server holds for one member identity.
struct psk_peer_cfg {
    std::string identity;
    secret_bytes psk;
    int line = 0;
};

/// Bounds on the key server's per-peer IKE state (RFC 7296 §2.6).
struct admission_cfg {
    uint32_t half_open_timeout_ms = 30'000;
    uint32_t max_half_open = 4096;
    uint32_t max_half_open_per_address = 64;
    uint32_t cookie_threshold = 256;
    uint32_t cookie_secret_lifetime_ms = 60'000;
    uint32_t finished_linger_ms = 60'000;
};

/// X.509 authentication (RFC 7427 signatures; PEM files). The certificate's commonName is the
/// identity; ca_file verifies the peers' certificates.
struct certificate_cfg {
    std::string certificate_file;
    std::string private_key_file;
    std::string ca_file;
};

/// The embedded key server (GCKS): this process hands out the groups' keys.
struct key_server_cfg {
    udp_endpoint listen;
    std::string identity = "gcks";
    std::vector<psk_peer_cfg> peers;
    std::string state_path;          ///< SQLite database; empty = state in memory only
    std::string storage_key_file;    ///< 256-bit key wrapping every key in state_path (mode 0600)
    admission_cfg admission;
    certificate_cfg certificates;    ///< sign our AUTH; accept members signing with a certificate
    /// Several key servers on etcd: the state lives there (instead of state_path) and only the
    /// elected leader answers. Empty: one key server.
    std::vector<std::string> etcd_endpoints;
    std::string etcd_prefix = "/msecgw/gcks";
    std::string candidate_id;        ///< unique per key server; empty: identity@listen
    uint32_t leader_ttl_seconds = 5;
    int line = 0;
};

/// This gateway as a group member: it registers for every group its policies name, with the key
/// server of the group's region (a boundary gateway is a member of two regions' key servers).
struct member_cfg {
    /// index into gateway_cfg::regions: the groups of this region register here; nullopt: every
    /// region that has no `member` entry of its own
    std::optional<uint16_t> region;
    std::string identity;
    secret_bytes psk;                ///< empty with a certificate
    certificate_cfg certificates;    ///< sign with a certificate instead of psk; ca_file for a signing key server
    udp_endpoint key_server;         ///< the first of key_servers
    std::vector<udp_endpoint> key_servers; ///< tried in order when one does not answer
    std::string key_server_identity = "gcks";
    std::string local_address = "0.0.0.0"; ///< where our IKE socket binds (port chosen by the kernel)
    uint8_t dh_group = 19;                 ///< 19 (ECP-256) or 31 (Curve25519)
    /// After a rekey, receivers install the new TEK at once; this gateway starts *sending* with it
    /// only this long after it arrived (RFC 9838 activation time delay), so that every member has it.
    uint32_t activation_delay_ms = 1000;
    /// The previous TEK still opens packets for this long after the new one took over for sending
    /// (deactivation time delay), then it is removed.
    uint32_t deactivation_delay_ms = 5000;
    int line = 0;
};

struct gateway_cfg {
    std::string file;                ///< where it was loaded from (for messages)
    std::string state_dir = "/var/lib/msecgw";
    std::string drivers_cfg;         ///< directory of port profiles; empty = build default
    /// Key regions (docs/regions.md) by name; empty: one implicit region. Ports, SAs and
    /// policies name theirs (default: the first); a boundary gateway has ports in two.
    std::vector<std::string> regions;
    std::vector<port_cfg> ports;
    std::vector<sa_cfg> sas;
    std::vector<policy_cfg> policies; ///< in file order: first match wins per direction
    reassembly_cfg reassembly;
    /// A worker whose poll round found nothing sleeps this long (0: busy polling, the default);
    /// for several gateways sharing few cores at low rates (docs/regions.md).
    uint32_t idle_sleep_us = 0;
    std::vector<group_cfg> groups;
    std::optional<key_server_cfg> key_server;
    /// `member`: one entry (every region), or one per region; empty: no group member
    std::vector<member_cfg> members;

    /// Every source_auth block, by slot (SAs in file order, then groups).
    std::vector<std::shared_ptr<const source_auth_cfg>> source_auth;

    const sa_cfg* find_sa(std::string_view name) const;
    std::size_t region_count() const { return regions.empty() ? 1 : regions.size(); }
    const group_cfg* find_group(std::string_view name) const;
    /// The member entry that registers the groups of `region`; nullptr: none does.
    const member_cfg* member_for(uint16_t region) const;
};

/// Parses and validates a configuration file.
result<gateway_cfg> load_file(const std::string& path);
/// Parses and validates YAML text; `name` stands for the file name in messages.
result<gateway_cfg> load_string(std::string_view yaml, std::string_view name);

/// Parses "239.0.0.0/8", "ff02::1", "10.0.0.1", "any". Address without length = host prefix.
result<ip_prefix> parse_prefix(std::string_view text);

} // namespace msecgw::config
