#pragma once
/// G-IKEv2 (RFC 9838) group key management: a key server (GCKS) and a group member (GM).
///
/// Both are driven from the control core by `tick(now)`: it drains the non-blocking UDP socket,
/// answers or advances exchanges and retransmits what is due (RFC 7296 §2.1). Nothing blocks and
/// nothing here runs on a worker lcore. Not thread-safe: one caller per object.
///
/// Registration is IKE_SA_INIT (ECDH group 19 or 31, ENCR_AES_GCM_16, PRF_HMAC_SHA2_256,
/// KW_5649_256) then GSA_AUTH with a pre-shared key; the GCKS answers with GSA (TEK policy and
/// group-wide policy) and KD (the TEK wrapped under GSK_w, and a Sender-ID for senders), or with
/// AUTHORIZATION_FAILED and no key.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "certs.hh"
#include "crypto.hh"
#include "payloads.hh"
#include "udp.hh"

namespace msecgw::gkm {

using clock = std::chrono::steady_clock;

/// Test and debugging hook: every datagram sent or received, as it is on the wire.
enum class datagram_direction { sent, received };
using datagram_observer =
    std::function<void(datagram_direction, const endpoint& local, const endpoint& remote, byte_view data)>;

/// RFC 7296 §2.1: retransmit a request after initial, doubling each time, give up after
/// max_transmissions sends.
struct retransmit_policy {
    std::chrono::milliseconds initial{500};
    unsigned max_transmissions = 6;
};

/// A pre-shared key identity (ID_KEY_ID) and its key.
struct psk_identity {
    std::string id;
    bytes psk;
};

struct group_config {
    uint32_t group_id = 1;                ///< carried in IDg as a 4-byte ID_KEY_ID
    std::vector<std::string> members;     ///< identities allowed to join (receive the TEK)
    std::vector<std::string> senders;     ///< identities that may send (get a Sender-ID)
    traffic_selector source;              ///< TEK policy selectors
    traffic_selector destination;
    uint16_t tek_key_bits = 128;          ///< AES-128-GCM or AES-256-GCM
    uint32_t tek_lifetime_seconds = 3600;
    /// GSA_REKEY with a new TEK this often (the first one a period after start); 0: only when
    /// gcks::rekey is called. Keep it below tek_lifetime_seconds so members never see an expiry.
    uint32_t rekey_period_seconds = 0;
    uint8_t sender_id_bits = 16;          ///< RFC 6054 Sender-ID width in the IV
    /// For this long after a rekey a registering member also gets the TEK the rekey replaced
    /// and sends under it for its activation delay, like the members the rekey reached (never
    /// in key tree groups). Keep it above the time a rekey takes to reach every member and
    /// below the members' deactivation delay; 0: registrants get the current TEK only.
    uint32_t registration_overlap_ms = 1000;

    // ---- [E2] LKH key tree (README.md "Key tree in the protocol") ----
    /// Keep an LKH key tree for the group: each member gets its path keys at registration, the
    /// KEK is derived from the tree root, and joins/leaves are rekeyed in batches (a membership
    /// GSA_REKEY with the new path keys, then a TEK rekey under the new KEK). Off: one KEK for
    /// the group's lifetime and an eviction only takes effect when the member's TEK expires.
    bool key_tree = false;
    unsigned lkh_arity = 2;             ///< children per tree node, 2 to 16
    uint32_t lkh_max_members = 4096;    ///< tree capacity (rounded up to a power of the arity)
    /// Joins and leaves are collected this long, then committed in one membership rekey; 0:
    /// each registration or eviction is committed at the next tick. A joiner's GSA_AUTH answer
    /// waits for the commit, so keep it well below the members' retransmission give-up (15 s).
    uint32_t rekey_batch_ms = 0;
    uint16_t rekey_mtu = 1500;          ///< a membership rekey is split into GSA_REKEYs of at most this many IP bytes

    // ---- GSA_REKEY delivery ----
    /// IPv4 multicast group and port: each GSA_REKEY is sent once there (members learn the
    /// address from the KEK policy and join it); unset: unicast to each member's address.
    std::optional<endpoint> rekey_address;
    uint8_t rekey_ttl = 1;              ///< IP_MULTICAST_TTL of multicast rekeys
    /// IP_MULTICAST_IF: address of the interface multicast rekeys leave by; 0: the GCKS's
    /// listen address (or the kernel's choice when that is 0.0.0.0).
    uint32_t rekey_interface = 0;
};

/// Bounds on the GCKS's per-peer IKE state (RFC 7296 §2.6). A half-open session is one whose
/// IKE_SA_INIT was answered but whose GSA_AUTH was not.
struct admission_policy {
    std::chrono::milliseconds half_open_timeout{30'000};  ///< a half-open session is dropped after this
    size_t max_half_open = 4096;                          ///< hard cap: IKE_SA_INIT beyond it is dropped
    /// Cap per source address: one address cannot fill the table and keep others out (a flood
    /// that answers our cookies comes from real addresses).
    size_t max_half_open_per_address = 64;
    size_t cookie_threshold = 256;  ///< from this many half-open sessions on, IKE_SA_INIT needs a COOKIE
    std::chrono::milliseconds cookie_secret_lifetime{60'000};  ///< the cookie secret rotates this often
    /// A finished registration's IKE SA is kept this long to answer a retransmitted GSA_AUTH.
    std::chrono::milliseconds finished_linger{60'000};
    /// Datagrams one tick() handles at most, so a flood cannot keep tick() from batch commits,
    /// rekeys and election steps; the rest waits in the socket buffer (the kernel drops beyond it).
    size_t datagrams_per_tick = 256;
};

struct gcks_config {
    endpoint listen;
    std::string identity = "gcks";
    /// GM identities and the key each shares with the GCKS (both sides MAC with it, RFC 7296 §2.15).
    std::vector<psk_identity> peers;
    /// Members may instead authenticate with certificates (ca_file); the GCKS signs its own AUTH
    /// with its certificate when it has one, else MACs it with the member's pre-shared key.
    certificate_config certificates;
    std::vector<group_config> groups;
    admission_policy admission;
    /// SQLite database that keeps groups, TEKs, the KEK, the signing key, Sender-ID reservations,
    /// Message IDs and member addresses across restarts (also kill -9). Empty: state in memory only.
    std::string state_path;
    /// File with the 256-bit storage key (64 hex digits, mode 0600) under which every key in the
    /// database is wrapped (RFC 5649). Required with state_path; never stored in the database.
    std::string storage_key_path;
    /// Sender-IDs reserved per database write; a restart skips the unused rest of a block.
    uint32_t sender_id_block = 32;
    /// Several key servers on etcd (README.md "Several key servers on etcd"): when set, the state
    /// lives in etcd under etcd_prefix instead of state_path (keys wrapped under the storage key,
    /// storage_key_path required), and only the elected leader answers registrations and sends
    /// rekeys. Election steps and etcd calls run in tick() and block at most the client timeout
    /// (min(1 s, leader_ttl_seconds / 4)) per endpoint tried.
    std::vector<std::string> etcd_endpoints;   ///< "http://10.0.0.1:2379", ...
    std::string etcd_prefix = "/msecgw/gcks";  ///< one prefix per cooperating group of key servers
    std::string candidate_id;                  ///< unique per key server; empty: identity@listen address
    uint32_t leader_ttl_seconds = 5;           ///< election lease: a dead leader is replaced after about this
    datagram_observer observer;
};

/// What the GCKS currently holds for one group (operator view and tests; no key material).
struct group_status {
    uint32_t tek_spi = 0;
    uint32_t next_sender_id = 0;
    uint32_t next_rekey_message_id = 0;
    size_t members = 0;  ///< addresses GSA_REKEY goes to (key tree: committed members)
    uint32_t key_tree_epoch = 0;   ///< membership rekeys committed (key tree groups)
    size_t key_tree_pending = 0;   ///< joins and leaves waiting for the batch commit
};

/// One value (or run of values) a key server took for itself: what an audit log of issued values
/// needs to show that nothing was handed out twice, whichever key server did it (no key material).
struct issued_value {
    enum class kind { tek_spi, sender_id, message_id };
    kind what = kind::tek_spi;
    uint32_t group_id = 0;
    uint32_t first = 0;
    uint32_t count = 1;                  ///< Message IDs of a rekey come in runs
    std::chrono::steady_clock::time_point at;  ///< when it was taken (CLOCK_MONOTONIC)
};
std::string_view to_string(issued_value::kind k);

struct gcks_counters {
    uint64_t ike_sa_init = 0;
    uint64_t registrations = 0;           ///< GSA_AUTH answered with keys
    uint64_t registrations_with_previous_tek = 0;  ///< ... within registration_overlap_ms of a rekey: the previous TEK too
    uint64_t authorization_failed = 0;
    uint64_t authentication_failed = 0;
    uint64_t invalid_group = 0;
    uint64_t no_proposal_chosen = 0;
    uint64_t malformed = 0;               ///< undecodable or undecryptable datagrams dropped
    uint64_t ignored = 0;                 ///< well-formed but unanswered: responses, exchanges not served, out of window
    uint64_t retransmissions_answered = 0;
    uint64_t rekeys_sent = 0;              ///< GSA_REKEY messages (one per member reached)
    uint64_t periodic_rekeys = 0;          ///< rekeys started by rekey_period_seconds
    uint64_t restart_rekeys = 0;           ///< rekeys at a start on stored state (a TEK committed before a crash may not have gone out)
    uint64_t rekeys_failed = 0;            ///< periodic rekeys that could not be made (e.g. the store failed)
    uint64_t cookies_sent = 0;             ///< IKE_SA_INIT answered with N(COOKIE) and no state kept
    uint64_t cookies_rejected = 0;         ///< IKE_SA_INIT with a wrong or stale COOKIE, dropped
    uint64_t half_open_dropped = 0;        ///< IKE_SA_INIT dropped at max_half_open
    uint64_t half_open_address_dropped = 0;  ///< IKE_SA_INIT dropped at max_half_open_per_address
    uint64_t half_open_expired = 0;        ///< half-open sessions removed after half_open_timeout
    uint64_t sessions_expired = 0;         ///< finished sessions removed after finished_linger
    uint64_t refused_sessions_ended = 0;   ///< sessions removed right after a refused GSA_AUTH
    uint64_t membership_rekeys = 0;        ///< key tree batches committed and sent
    uint64_t membership_rekey_parts = 0;   ///< GSA_REKEY messages (parts) those batches needed
    uint64_t evictions = 0;                ///< members queued to leave (evict, set_members, superseded)
    // Several key servers on etcd.
    uint64_t leader_takeovers = 0;         ///< times this key server became the leader (state loaded from etcd)
    uint64_t leader_step_downs = 0;        ///< times it stopped leading (lost or unrenewable lease, etcd down)
    uint64_t etcd_errors = 0;              ///< election steps or state loads that etcd did not answer
    uint64_t not_leader_dropped = 0;       ///< datagrams left unanswered because this server does not lead
    uint64_t etcd_retries_deferred = 0;    ///< election steps put off by the back-off after etcd errors
    uint64_t issued_log_dropped = 0;       ///< issued values nobody drained (take_issued) before the journal filled
};

class gcks {
public:
    static result<std::unique_ptr<gcks>> create(gcks_config config);
    ~gcks();

    void tick(clock::time_point now);
    /// GSA_REKEY: a fresh TEK (new SPI) for the group, wrapped under its KEK, signed with the GCKS
    /// key, with the next Message ID, sent to every registered member's address. tick() calls it
    /// for groups with a rekey_period_seconds; the period restarts after every rekey.
    result<void> rekey(uint32_t group_id);
    /// Key tree groups: removes the identity's leaf from every group at the next batch commit
    /// (its keys become useless: forward access control). It may register again while the
    /// group's members list still names it; set_members() keeps it out.
    size_t evict(const std::string& identity);
    /// A config reload of who may join a group: later registrations are checked against the new
    /// list, and in key tree groups every member no longer on it is evicted.
    result<void> set_members(uint32_t group_id, std::vector<std::string> members);
    /// DER SubjectPublicKeyInfo of the key that signs GSA_REKEY (members need it).
    const bytes& rekey_public_key() const;
    const endpoint& local() const;
    int fd() const;
    const gcks_counters& counters() const;
    /// IKE SAs the GCKS holds: half-open ones, and all of them (half-open plus finished).
    size_t half_open_sessions() const;
    size_t sessions() const;
    std::optional<group_status> status(uint32_t group_id) const;
    /// True while this key server answers registrations and sends rekeys: always without etcd,
    /// with etcd while it holds the election.
    bool leading() const;
    /// With etcd: why the last election step or state load failed (no secrets), empty when it worked.
    const std::string& cluster_error() const;
    /// With etcd: the wait before the next election step after consecutive etcd failures while
    /// not leading (doubling from the step interval up to a bound; zero once etcd answers), and
    /// how many steps in a row failed.
    std::chrono::milliseconds etcd_backoff() const;
    uint64_t etcd_consecutive_failures() const;
    /// TEK SPIs, Sender-IDs and Message IDs taken since the last call, oldest first (the caller
    /// logs them); at most a few thousand are kept between calls.
    std::vector<issued_value> take_issued();
    /// A clean stop with etcd: gives up the lead at once (a standby takes over at its next step,
    /// without waiting for the lease) and answers nobody from then on. Destroying the object
    /// without it behaves like a crash: the lease runs out.
    void resign();

private:
    struct impl;
    explicit gcks(std::unique_ptr<impl> s);
    std::unique_ptr<impl> _s;
};

/// A traffic-encryption key as installed into the data plane (ESP AES-GCM, RFC 4106).
struct tek {
    uint32_t spi = 0;
    uint16_t key_bits = 128;
    secret key;   ///< 16 or 32 bytes
    secret salt;  ///< 4 bytes
    traffic_selector source;
    traffic_selector destination;
    uint32_t lifetime_seconds = 0;
};

struct group_membership {
    uint32_t group_id = 0;
    std::vector<tek> teks;              ///< newest first; a rekey keeps up to two older ones (overlap)
    std::optional<uint32_t> sender_id;  ///< present when the GCKS let us send
    uint8_t sender_id_bits = 0;
};

enum class member_state { idle, ike_sa_init_sent, gsa_auth_sent, registered, rejected, timed_out, failed };
std::string_view to_string(member_state s);

struct member_config {
    endpoint local{0x7f000001, 0};
    endpoint gcks;
    /// Several key servers: tried in order, the next one when a registration (or recovery)
    /// gets no answer after the retransmissions; empty: just gcks. They share the identity,
    /// keys and rekey signing key (a cooperative group on etcd).
    std::vector<endpoint> key_servers;
    std::string identity;
    bytes psk;                            ///< empty when the member signs with a certificate
    certificate_config certificates;      ///< our certificate (instead of psk); ca_file to verify a signing GCKS
    std::string gcks_identity = "gcks";
    uint32_t group_id = 1;
    bool sender = true;                   ///< ask for a Sender-ID (N(GROUP_SENDER))
    dh_group group = dh_group::ecp256;
    retransmit_policy retransmit;
    std::string keylog_path;              ///< operator-requested Wireshark ikev2_decryption_table
    /// Pins the key that signs GSA_REKEY (DER SubjectPublicKeyInfo). Empty: the AUTH_KEY the GCKS
    /// sends at registration (authenticated by the IKE SA) is used.
    bytes gcks_public_key;
    /// Missed-rekey recovery: re-register (keeping the current keys until the new ones arrive)
    /// when an accepted GSA_REKEY's Message ID shows that earlier ones were missed...
    bool reregister_on_gap = true;
    /// ...or when the newest TEK outlived its lifetime without a rekey.
    bool reregister_on_expiry = true;
    /// After a recovery that timed out, the next attempt waits this long.
    std::chrono::milliseconds recovery_retry{10'000};
    /// Interface address for IP_ADD_MEMBERSHIP when the GCKS announces a multicast rekey
    /// address; 0: the local address (the kernel's choice when that is 0.0.0.0).
    uint32_t multicast_interface = 0;
    datagram_observer observer;
};

struct member_counters {
    uint64_t rekeys_accepted = 0;
    uint64_t rekeys_replayed = 0;  ///< Message ID not above the last accepted one
    uint64_t rekeys_forged = 0;    ///< wrong SPI, ICV, signature or content
    uint64_t rekeys_missed = 0;    ///< Message IDs skipped between two accepted rekeys
    uint64_t reregistrations = 0;  ///< recoveries started (gap, TEK expiry, retry)
    uint64_t key_tree_rekeys = 0;  ///< membership rekeys applied (new path keys and KEK)
    uint64_t key_tree_failures = 0;  ///< membership rekeys that could not be applied (evicted, missed part)
    uint64_t gcks_failovers = 0;     ///< registrations moved to the next key server after a timeout
};

class group_member {
public:
    static result<std::unique_ptr<group_member>> create(member_config config);
    ~group_member();

    /// Starts registration (IKE_SA_INIT); again after rejected/timed_out/failed.
    void start(clock::time_point now);
    /// Receives, retransmits, and starts a recovery re-registration when one is due (a missed
    /// rekey or an expired TEK). While it runs, membership() still returns the current keys.
    void tick(clock::time_point now);

    member_state state() const;
    /// Keys and Sender-ID once registered, else null.
    const group_membership* membership() const;
    /// The error Notify the GCKS answered with (e.g. AUTHORIZATION_FAILED), if any.
    std::optional<notify_type> rejection() const;
    /// Why the member is not registered, for logs (no secrets).
    const std::string& last_error() const;
    /// Requests sent, retransmissions included.
    uint64_t transmissions() const;
    const member_counters& counters() const;
    const endpoint& local() const;
    /// The key server registrations go to now (member_config::key_servers rotate on timeouts).
    const endpoint& key_server() const;
    int fd() const;
    /// The socket joined to the GCKS's multicast rekey address, or -1.
    int rekey_fd() const;
    /// Key tree groups: the epoch of the path keys held, else nothing.
    std::optional<uint32_t> key_tree_epoch() const;

private:
    struct impl;
    explicit group_member(std::unique_ptr<impl> s);
    std::unique_ptr<impl> _s;
};

} // namespace msecgw::gkm
