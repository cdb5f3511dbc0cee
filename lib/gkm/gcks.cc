#include <algorithm>
#include <unordered_map>

#include "gkm.hh"
#include "cookies.hh"
#include "etcd_store.hh"
#include "ike_sa.hh"
#include "lkh.hh"
#include "lkh_store.hh"
#include "registration.hh"
#include "rekey.hh"
#include "store.hh"

namespace msecgw::gkm {

namespace {

/// A registration whose answer waits for the key tree's batch commit (its path keys exist then).
struct pending_join {
    uint64_t session = 0;        ///< responder SPI of the IKE SA to answer on
    uint32_t leaf = 0;
    std::string identity;
    endpoint address;
    bool sender = false;
    std::vector<payload> answer; ///< IDr and AUTH, the key download is appended at the commit
};

/// The LKH tree of a key tree group and who holds which leaf.
struct key_tree_state {
    lkh_tree tree;
    std::map<uint32_t, lkh_member_record> members;  ///< committed members by leaf (leavers until the commit)
    std::vector<pending_join> joins;
    std::optional<clock::time_point> batch_due;     ///< when the queued changes are committed
};

struct group_runtime {
    group_config config;
    uint32_t tek_spi = 0;
    secret tek_keymat;  ///< key ‖ salt (RFC 4106 keying material)
    uint32_t next_sender_id = 1;
    secret kek;                       ///< key ‖ salt of the rekey SA
    bytes kek_spi;                    ///< 16 bytes: SPIi ‖ SPIr of GSA_REKEY messages
    uint32_t next_rekey_message_id = 1;
    std::vector<endpoint> registered; ///< where GSA_REKEY goes (unicast until multicast lands)
    uint32_t sender_id_reserved = 1;  ///< with a store: Sender-IDs below this are committed to it
    std::optional<clock::time_point> next_rekey;  ///< periodic rekey: when the next one is due
    std::optional<key_tree_state> lkh;            ///< config.key_tree: the tree (the KEK derives from its root)
    /// Restarted on a stored TEK with members: rekey at the first tick. A crash between committing
    /// a TEK and sending its GSA_REKEY leaves a TEK the members never got; members registering
    /// after the restart would seal under it and the others could not open it until the next rekey.
    bool rekey_at_start = false;
    /// The TEK the last rekey replaced, handed to members registering within
    /// config.registration_overlap_ms of that rekey (never in key tree groups: see key_download).
    uint32_t previous_tek_spi = 0;
    secret previous_tek_keymat;
    clock::time_point previous_tek_until{};

    stored_group snapshot() const
    {
        return stored_group{config.group_id, tek_spi, tek_keymat.clone(), kek.clone(), kek_spi, sender_id_reserved,
                            next_rekey_message_id};
    }
};

gsa_policy make_policy(gsa_policy_type type, protocol_id protocol, bytes spi, std::vector<transform> transforms,
                       std::vector<attribute> attributes)
{
    gsa_policy p;
    p.type = type;
    p.protocol = protocol;
    p.spi = std::move(spi);
    p.transforms = std::move(transforms);
    p.attributes = std::move(attributes);
    return p;
}

gsa_policy tek_policy(const group_runtime& g, uint32_t spi)
{
    gsa_policy tek = make_policy(
        gsa_policy_type::tek, protocol_id::esp, spi_bytes(spi),
        {transform::make(transform_type::encr, encr_aes_gcm_16, g.config.tek_key_bits),
         transform::make(transform_type::sn, sn_32bit_unspecified)},
        {attribute::u32(uint16_t(gsa_attribute::key_lifetime), g.config.tek_lifetime_seconds)});
    tek.source = g.config.source;
    tek.destination = g.config.destination;
    return tek;
}

gsa_policy group_wide_policy(const group_runtime& g)
{
    return make_policy(gsa_policy_type::group_wide, protocol_id::none, {}, {},
                       {attribute::short_form(uint16_t(gwp_attribute::sender_id_bits), g.config.sender_id_bits)});
}

gsa_policy kek_policy(const group_runtime& g)
{
    std::vector<attribute> attributes{attribute::u32(uint16_t(gsa_attribute::initial_message_id), g.next_rekey_message_id)};
    if (g.config.rekey_address) {
        bytes where;
        wire_writer w(where);
        w.u32(g.config.rekey_address->address);
        w.u16(g.config.rekey_address->port);
        attributes.push_back(attribute::long_form(rekey_address_attribute, where));
    }
    return make_policy(gsa_policy_type::kek, protocol_id::gike_update, g.kek_spi,
                       {transform::make(transform_type::encr, encr_aes_gcm_16, kek_key_size * 8)}, std::move(attributes));
}

/// SA_KEY for the TEK `spi` with keying material `keymat`, wrapped under kwk (KWK ID kwk_id).
result<attribute> sa_key_attribute(uint32_t spi, const secret& keymat, byte_view kwk, uint32_t kwk_id)
{
    result<bytes> wrapped = key_wrap(kwk, keymat.view());
    if (!wrapped) {
        return wrapped.err();
    }
    return attribute::long_form(uint16_t(group_key_attribute::sa_key), wrapped_key{spi, kwk_id, std::move(*wrapped)}.encode());
}

struct init_key {
    endpoint peer;
    uint64_t spi_i;
    bool operator<(const init_key& o) const
    {
        return std::tie(peer.address, peer.port, spi_i) < std::tie(o.peer.address, o.peer.port, o.spi_i);
    }
};

/// One IKE SA the GCKS answers on, keyed by its responder SPI. Half-open until GSA_AUTH is
/// answered; then finished and kept only to answer a retransmitted GSA_AUTH.
struct responder_session {
    endpoint peer;
    ike_sa sa;
    init_key init;
    clock::time_point expires;
    bool finished = false;
    bool awaiting_commit = false;  ///< GSA_AUTH accepted, answered at the key tree's batch commit
    uint32_t next_message_id = 1;
    uint32_t last_message_id = 0;
    bytes last_response;  ///< resent when the peer retransmits its request
};

uint64_t random_u64_nonzero()
{
    uint64_t v = 0;
    while (v == 0) {
        bytes b = random_bytes(8);
        wire_reader r(b);
        v = *r.u64();
    }
    return v;
}

uint32_t random_spi()
{
    uint32_t v = 0;
    while (v < 256) {  // SPIs 1-255 are reserved (RFC 4303)
        bytes b = random_bytes(4);
        v = load_be32(b.data());
    }
    return v;
}

} // namespace

/// Issued values kept for take_issued() between two calls (key_manager drains them every tick).
constexpr size_t issued_journal_limit = 4096;

struct gcks::impl {
    impl(gcks_config c, udp_socket s, signing_key k) : config(std::move(c)), socket(std::move(s)), signer(std::move(k)) {}

    gcks_config config;
    udp_socket socket;
    signing_key signer;
    certificate_auth certs;  ///< our certificate and the CA members' certificates chain to (optional)
    std::vector<group_runtime> groups;
    std::map<uint64_t, responder_session> sessions;
    std::map<init_key, std::pair<uint64_t, bytes>> init_responses;  ///< for IKE_SA_INIT retransmissions
    gcks_counters counters;
    std::unique_ptr<etcd::client> etcd;   ///< several key servers: state and election in etcd
    std::unique_ptr<gcks_state> store;    ///< SQLite (state_path) or etcd (etcd_endpoints), else none
    std::unique_ptr<key_tree_store> tree_store;  ///< key trees: the same database file, or etcd
    std::optional<etcd::election> election;
    bool leading = true;                  ///< without etcd always
    clock::time_point next_election_step{};
    clock::time_point renewed{};          ///< last election step that confirmed the lead
    std::string cluster_error;
    uint64_t etcd_failures = 0;           ///< election steps in a row etcd did not answer
    std::chrono::milliseconds etcd_backoff{0};
    std::vector<issued_value> issued;     ///< drained by take_issued()
    clock::time_point now = clock::now();  ///< of the current tick
    clock::time_point next_sweep = now;
    size_t half_open = 0;
    std::unordered_map<uint32_t, uint32_t> half_open_by_address;  ///< at most max_half_open entries
    cookie_jar cookies;

    void send(const endpoint& to, byte_view data)
    {
        if (config.observer) {
            config.observer(datagram_direction::sent, socket.local(), to, data);
        }
        socket.send_to(to, data);
    }

    const psk_identity* find_peer(const std::string& id) const
    {
        for (const psk_identity& p : config.peers) {
            if (p.id == id) {
                return &p;
            }
        }
        return nullptr;
    }

    group_runtime* find_group(uint32_t id)
    {
        for (group_runtime& g : groups) {
            if (g.config.group_id == id) {
                return &g;
            }
        }
        return nullptr;
    }

    void handle(const received_datagram& dg);
    bool admit_init(const received_datagram& dg, const message& m, const nonce_payload& ni);
    void expire_sessions();
    void end_session(std::map<uint64_t, responder_session>::iterator it);
    /// The session's GSA_AUTH came or it ends: one half-open session less (also for its address).
    void close_half_open(const endpoint& peer);
    void handle_init(const received_datagram& dg, const message& m);
    void handle_gsa_auth(const received_datagram& dg, const message& m);
    /// The answer to a GSA_AUTH, or nothing when it waits for the key tree's batch commit.
    std::optional<std::vector<payload>> answer_registration(responder_session& s, const std::vector<payload>& request);
    std::vector<payload> key_download(responder_session& s, group_runtime& g, bool sender, const std::string& identity,
                                      std::optional<uint32_t> leaf = std::nullopt);
    /// Seals and sends a GSA_AUTH answer on the session (kept for retransmissions).
    void finish_registration(std::map<uint64_t, responder_session>::iterator it, const std::vector<payload>& answer);
    result<void> rekey(uint32_t group_id);
    /// Where GSA_REKEY goes: unicast addresses (the multicast address is used instead when set).
    std::vector<endpoint> destinations(const group_runtime& g) const;
    /// Signs inner, seals it under kek with message_id, sends it once to the multicast address
    /// or to each of `to`.
    result<void> send_rekey(const group_runtime& g, std::vector<payload> inner, uint32_t message_id, byte_view kek,
                            std::span<const endpoint> to);
    /// GSA and KD of a TEK rekey: the group's current TEK wrapped under its KEK.
    result<std::vector<payload>> tek_rekey_payloads(const group_runtime& g) const;
    // Key tree (group_config::key_tree).
    result<void> load_key_tree(group_runtime& g);
    void queue_join(group_runtime& g, uint64_t session, const std::string& identity, bool sender,
                    std::vector<payload> answer, const endpoint& address, uint32_t leaf);
    void queue_leave(group_runtime& g, lkh_member_record& m);
    void schedule_batch(group_runtime& g);
    void commit_due_batches();
    result<void> commit_batch(group_runtime& g);
    void rekey_due_groups();
    result<void> open_store();
    result<void> open_etcd(secret storage_key);
    /// The signing key from the store, or ours saved there first.
    result<void> load_signing_key();
    result<void> add_group(const group_config& gc);
    /// g's TEK, KEK, Message ID, Sender-ID marks and members from the store (nothing when absent).
    result<void> load_group_state(group_runtime& g);
    /// A new group's first TEK (when none was loaded), its key tree, committed to the store.
    result<void> init_group_state(group_runtime& g);
    /// A TEK SPI never issued before (by this process or, with a store, any earlier one, or
    /// with etcd any key server).
    result<uint32_t> fresh_spi(const group_runtime& g);
    /// count GSA_REKEY Message IDs and the group as it is now (new TEK, KEK), committed to the
    /// store together before use; returns the first.
    result<uint32_t> commit_rekey(group_runtime& g, uint32_t count);
    result<void> persist(const group_runtime& g) { return store ? store->save_group(g.snapshot()) : result<void>(); }
    bool reserve_sender_id(group_runtime& g, uint32_t limit);
    void record_issued(issued_value::kind what, uint32_t group_id, uint32_t first, uint32_t count = 1)
    {
        if (issued.size() >= issued_journal_limit) {
            ++counters.issued_log_dropped;
            return;
        }
        issued.push_back(issued_value{what, group_id, first, count, clock::now()});
    }
    // Several key servers on etcd.
    void election_step();
    /// The next election step after a failed one: the step interval while leading (the lease
    /// must be renewed), else doubling per failure in a row up to max_etcd_backoff().
    void back_off_after_failure(clock::duration step);
    clock::duration max_etcd_backoff() const;
    /// Between two election steps while etcd answers: leader_ttl/4, at most 500 ms.
    clock::duration election_interval() const
    {
        return std::min<clock::duration>(std::chrono::milliseconds(500), lease() / 4);
    }
    /// leader_ttl_seconds in milliseconds (whole seconds would make TTL/4 zero for a 2 s TTL).
    std::chrono::milliseconds lease() const
    {
        return std::chrono::milliseconds(int64_t(config.leader_ttl_seconds) * 1000);
    }
    void step_down(const std::string& why);
    /// Becoming the leader: the signing key and every group's state from etcd, the periodic
    /// rekeys a period from now (no burst of rekeys at a take-over).
    result<void> take_over();
};

void gcks::impl::handle(const received_datagram& dg)
{
    if (config.observer) {
        config.observer(datagram_direction::received, socket.local(), dg.source, dg.data);
    }
    result<message> m = decode_message(dg.data);
    if (!m) {
        ++counters.malformed;
        return;
    }
    if (m->header.is_response() || !m->header.from_initiator()) {
        ++counters.ignored;  // we only answer requests from initiators
        return;
    }
    switch (m->header.exchange) {
    case exchange_type::ike_sa_init: handle_init(dg, *m); break;
    case exchange_type::gsa_auth: handle_gsa_auth(dg, *m); break;
    default: ++counters.ignored; break;  // GSA_REGISTRATION, INFORMATIONAL: not yet
    }
}

void gcks::impl::handle_init(const received_datagram& dg, const message& m)
{
    if (m.header.spi_r != 0 || m.header.message_id != 0 || m.header.spi_i == 0) {
        ++counters.malformed;
        return;
    }
    if (auto cached = init_responses.find(init_key{dg.source, m.header.spi_i}); cached != init_responses.end()) {
        ++counters.retransmissions_answered;
        send(dg.source, cached->second.second);
        return;
    }
    const auto* sa = find_payload<sa_payload>(m.payloads, payload_type::sa);
    const auto* ke = find_payload<ke_payload>(m.payloads, payload_type::ke);
    const auto* ni = find_payload<nonce_payload>(m.payloads, payload_type::nonce);
    if (sa == nullptr || ke == nullptr || ni == nullptr) {
        ++counters.malformed;
        return;
    }
    if (!admit_init(dg, m, *ni)) {
        return;
    }
    ike_header h{m.header.spi_i, 0, payload_type::none, ike_version_2, exchange_type::ike_sa_init, flag_response, 0, 0};
    const auto group = static_cast<dh_group>(ke->group);
    std::optional<proposal> chosen = choose_ike_proposal(*sa, group);
    if (!chosen) {
        ++counters.no_proposal_chosen;
        send(dg.source, encode_message(message{h, {notify(notify_type::no_proposal_chosen)}}));
        return;
    }
    result<ecdh_key> ours = ecdh_key::generate(group);
    if (!ours) {
        return;
    }
    result<secret> shared = ours->shared_secret(ke->data);
    if (!shared) {
        ++counters.malformed;
        return;
    }
    ++counters.ike_sa_init;
    h.spi_r = random_u64_nonzero();
    bytes nonce_r = random_bytes(our_nonce_size);
    message response{h,
                     {payload{payload_type::sa, false, sa_payload{{*chosen}}},
                      payload{payload_type::ke, false, ke_payload{ke->group, ours->public_value()}},
                      payload{payload_type::nonce, false, nonce_payload{nonce_r}}}};
    ike_init_exchange init{m.header.spi_i, h.spi_r, ni->data, nonce_r, dg.data, encode_message(response)};
    ike_sa_keys keys = derive_ike_sa_keys(init.nonce_i, init.nonce_r, shared->view(), init.spi_i, init.spi_r,
                                          ike_encr_key_size);
    bytes wire = init.response;
    const init_key key{dg.source, m.header.spi_i};
    init_responses[key] = {h.spi_r, wire};
    sessions.emplace(h.spi_r, responder_session{dg.source, ike_sa(ike_role::responder, std::move(init), std::move(keys)),
                                                key, now + config.admission.half_open_timeout, false, false, 1, 0, {}});
    ++half_open;
    ++half_open_by_address[dg.source.address];
    send(dg.source, wire);
}

/// RFC 7296 §2.6: from cookie_threshold half-open sessions on, a request without our COOKIE gets
/// one back and costs us no state and no Diffie-Hellman; max_half_open is never exceeded.
bool gcks::impl::admit_init(const received_datagram& dg, const message& m, const nonce_payload& ni)
{
    const admission_policy& policy = config.admission;
    if (half_open >= policy.cookie_threshold) {
        const notify_payload* cookie = find_notify(m.payloads, notify_type::cookie);
        if (cookie == nullptr) {
            ike_header h{m.header.spi_i, 0, payload_type::none, ike_version_2, exchange_type::ike_sa_init, flag_response, 0, 0};
            payload n = notify(notify_type::cookie);
            std::get<notify_payload>(n.body).data = cookies.make(ni.data, dg.source, m.header.spi_i);
            ++counters.cookies_sent;
            send(dg.source, encode_message(message{h, {std::move(n)}}));
            return false;
        }
        if (!cookies.valid(cookie->data, ni.data, dg.source, m.header.spi_i)) {
            ++counters.cookies_rejected;
            return false;
        }
    }
    if (half_open >= policy.max_half_open) {
        ++counters.half_open_dropped;
        return false;
    }
    // One address (with cookies: a real one, it answered ours) cannot take the whole table.
    if (auto n = half_open_by_address.find(dg.source.address);
        n != half_open_by_address.end() && n->second >= policy.max_half_open_per_address) {
        ++counters.half_open_address_dropped;
        return false;
    }
    return true;
}

void gcks::impl::close_half_open(const endpoint& peer)
{
    --half_open;
    if (auto n = half_open_by_address.find(peer.address); n != half_open_by_address.end() && --n->second == 0) {
        half_open_by_address.erase(n);
    }
}

void gcks::impl::end_session(std::map<uint64_t, responder_session>::iterator it)
{
    if (auto cached = init_responses.find(it->second.init);
        cached != init_responses.end() && cached->second.first == it->first) {
        init_responses.erase(cached);
    }
    if (!it->second.finished) {
        close_half_open(it->second.peer);
    }
    sessions.erase(it);
}

void gcks::impl::expire_sessions()
{
    if (now < next_sweep) {
        return;
    }
    next_sweep = now + std::chrono::milliseconds(100);
    for (auto it = sessions.begin(); it != sessions.end();) {
        auto next = std::next(it);
        if (it->second.expires <= now) {
            ++(it->second.finished ? counters.sessions_expired : counters.half_open_expired);
            end_session(it);
        }
        it = next;
    }
}

void gcks::impl::handle_gsa_auth(const received_datagram& dg, const message& m)
{
    auto it = sessions.find(m.header.spi_r);
    if (it == sessions.end() || it->second.sa.spi_i() != m.header.spi_i) {
        ++counters.malformed;
        return;
    }
    responder_session& s = it->second;
    if (m.header.message_id == s.last_message_id && !s.last_response.empty()) {
        ++counters.retransmissions_answered;
        send(dg.source, s.last_response);
        return;
    }
    if (m.header.message_id != s.next_message_id) {
        ++counters.ignored;  // outside the window of one (RFC 7296 §2.3)
        return;
    }
    result<std::vector<payload>> request = s.sa.open(m, dg.data);
    if (!request) {
        ++counters.malformed;
        return;
    }
    s.last_message_id = m.header.message_id;
    s.next_message_id = m.header.message_id + 1;
    if (!s.finished) {
        s.finished = true;
        close_half_open(s.peer);
        s.expires = now + config.admission.finished_linger;
    }
    std::optional<std::vector<payload>> answer = answer_registration(s, *request);
    if (!answer) {
        // Waits for the batch commit; retransmissions meanwhile find no last_response and are dropped.
        s.awaiting_commit = true;
        return;
    }
    finish_registration(it, *answer);
}

void gcks::impl::finish_registration(std::map<uint64_t, responder_session>::iterator it, const std::vector<payload>& answer)
{
    responder_session& s = it->second;
    s.awaiting_commit = false;
    result<bytes> wire = s.sa.seal(exchange_type::gsa_auth, s.last_message_id, true, answer);
    if (!wire) {
        return;
    }
    s.last_response = std::move(*wire);
    send(s.peer, s.last_response);
    if (find_payload<kd_payload>(answer, payload_type::kd) == nullptr) {
        // Refused (authentication, authorization, group): nothing to keep. Anyone who can do
        // IKE_SA_INIT could otherwise fill the GCKS with lingering refused sessions.
        ++counters.refused_sessions_ended;
        end_session(it);
    }
}

std::optional<std::vector<payload>> gcks::impl::answer_registration(responder_session& s, const std::vector<payload>& request)
{
    const auto* idi = find_payload<id_payload>(request, payload_type::idi);
    const auto* auth = find_payload<auth_payload>(request, payload_type::auth);
    const auto* idg = find_payload<id_payload>(request, payload_type::idg);
    if (idi == nullptr || auth == nullptr || idg == nullptr) {
        ++counters.malformed;
        return std::vector<payload>{notify(notify_type::invalid_syntax)};
    }
    const std::string identity = identity_of(*idi);
    const psk_identity* peer = find_peer(identity);
    const bool signed_by_certificate = auth->method == auth_method::digital_signature;
    const bool authenticated =
        signed_by_certificate
            ? certs.verify(request, s.sa, ike_role::initiator, *idi, identity).ok()
            : peer != nullptr && auth->method == auth_method::shared_key_mic &&
                  equal_constant_time(auth->data, s.sa.psk_auth(peer->psk, ike_role::initiator, *idi).view());
    // Our own AUTH: signed with our certificate, or MACed with the member's pre-shared key.
    if (!authenticated || (!certs.own && peer == nullptr)) {
        ++counters.authentication_failed;
        return std::vector<payload>{notify(notify_type::authentication_failed)};
    }
    const id_payload idr = key_id_payload(config.identity);
    std::vector<payload> answer{payload{payload_type::idr, false, idr}};
    if (certs.own) {
        result<std::vector<payload>> ours = certs.sign(s.sa, ike_role::responder, idr);
        if (!ours) {
            ++counters.authentication_failed;
            return std::vector<payload>{notify(notify_type::authentication_failed)};
        }
        answer.insert(answer.end(), std::make_move_iterator(ours->begin()), std::make_move_iterator(ours->end()));
    } else {
        secret our_auth = s.sa.psk_auth(peer->psk, ike_role::responder, idr);
        answer.push_back(payload{payload_type::auth, false,
                                 auth_payload{auth_method::shared_key_mic, bytes(our_auth.view().begin(), our_auth.view().end())}});
    }

    std::optional<uint32_t> group_id = group_id_of(*idg);
    group_runtime* g = group_id ? find_group(*group_id) : nullptr;
    if (g == nullptr) {
        ++counters.invalid_group;
        answer.push_back(notify(notify_type::invalid_group_id));
        return answer;
    }
    const auto& members = g->config.members;
    if (std::find(members.begin(), members.end(), identity) == members.end()) {
        ++counters.authorization_failed;
        answer.push_back(notify(notify_type::authorization_failed));
        return answer;
    }
    const auto& senders = g->config.senders;
    const bool wants_to_send = find_notify(request, notify_type::group_sender) != nullptr;
    const bool may_send = std::find(senders.begin(), senders.end(), identity) != senders.end();
    if (g->lkh) {
        result<uint32_t> leaf = g->lkh->tree.add_member();
        if (!leaf) {  // the tree is full
            answer.push_back(notify(notify_type::registration_failed));
            return answer;
        }
        queue_join(*g, s.sa.spi_r(), identity, wants_to_send && may_send, std::move(answer), s.peer, *leaf);
        return std::nullopt;
    }
    std::vector<payload> keys = key_download(s, *g, wants_to_send && may_send, identity);
    if (keys.empty()) {
        answer.push_back(notify(notify_type::registration_failed));
        return answer;
    }
    ++counters.registrations;
    answer.insert(answer.end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
    return answer;
}

std::vector<payload> gcks::impl::key_download(responder_session& s, group_runtime& g, bool sender,
                                              const std::string& identity, std::optional<uint32_t> leaf)
{
    // A registration just after a rekey also gets the TEK it replaced: the members the rekey
    // reached send under that one for their activation delay, and so does the registrant
    // (key_manager's outbound choice), instead of sealing at once under a TEK the others may
    // not have received yet. Not in key tree groups: a joiner must not read traffic from
    // before its join (the join's own rekey exists for that).
    std::vector<gsa_policy> policies{kek_policy(g)};
    key_bag group_keys{key_bag_type::group, {}};
    auto add_tek = [&](uint32_t spi, const secret& keymat) {
        result<attribute> sa_key = sa_key_attribute(spi, keymat, s.sa.wrap_key().view(), 0);
        if (sa_key) {
            policies.push_back(tek_policy(g, spi));
            group_keys.attributes.push_back(std::move(*sa_key));
        }
        return sa_key.ok();
    };
    if (!add_tek(g.tek_spi, g.tek_keymat)) {
        return {};
    }
    if (!leaf && g.previous_tek_spi != 0 && now < g.previous_tek_until) {
        if (!add_tek(g.previous_tek_spi, g.previous_tek_keymat)) {
            return {};
        }
        ++counters.registrations_with_previous_tek;
    }
    policies.push_back(group_wide_policy(g));
    kd_payload kd;
    kd.bags.push_back(std::move(group_keys));
    key_bag member{key_bag_type::member, {}};
    if (leaf) {
        // Key tree: the tree's epoch, then the member's path keys (RFC 9838 Appendix A), leaf
        // under GSK_w, the root (Key ID 1) last; the KEK is derived from the root.
        result<std::vector<lkh_path_key>> path = g.lkh->tree.member_path(*leaf);
        result<std::vector<attribute>> attrs = path ? encode_lkh_path(*path, s.sa.wrap_key().view())
                                                    : result<std::vector<attribute>>(path.err());
        if (!attrs) {
            return {};
        }
        member.attributes.push_back(attribute::u32(lkh_epoch_attribute, g.lkh->tree.epoch()));
        member.attributes.insert(member.attributes.end(), std::make_move_iterator(attrs->begin()),
                                 std::make_move_iterator(attrs->end()));
    } else {
        result<bytes> wrapped_kek = key_wrap(s.sa.wrap_key().view(), g.kek.view());
        if (!wrapped_kek) {
            return {};
        }
        member.attributes.push_back(attribute::long_form(uint16_t(member_key_attribute::wrap_key),
                                                         wrapped_key{kwk_id_kek, 0, std::move(*wrapped_kek)}.encode()));
    }
    // AUTH_KEY (RFC 9838 §4.5.3.2): the public key that signs GSA_REKEY, authenticated here by the
    // IKE SA, so members need no key file.
    member.attributes.push_back(attribute::long_form(uint16_t(member_key_attribute::auth_key), signer.public_key_der()));
    std::optional<uint32_t> sender_id;
    if (sender) {
        const uint32_t limit = g.config.sender_id_bits >= 32 ? 0xffffffffu : (1u << g.config.sender_id_bits) - 1;
        if (g.next_sender_id > limit || g.next_sender_id == 0 || !reserve_sender_id(g, limit)) {
            return {};  // Sender-ID space exhausted (or not durable): never hand one out twice
        }
        sender_id = g.next_sender_id++;
        record_issued(issued_value::kind::sender_id, g.config.group_id, *sender_id);
        member.attributes.push_back(attribute::u32(uint16_t(member_key_attribute::gm_sender_id), *sender_id));
    }
    kd.bags.push_back(std::move(member));
    if (!leaf && std::find(g.registered.begin(), g.registered.end(), s.peer) == g.registered.end()) {
        g.registered.push_back(s.peer);
    }
    if (store) {
        // A record for the operator; uniqueness does not depend on it (the Sender-ID's block was
        // committed before). A member whose address is lost gets no rekey after a restart and
        // re-registers when its TEK expires.
        (void)store->record_registration(g.config.group_id, s.peer, identity, sender_id);
    }
    return {payload{payload_type::gsa, false, gsa_payload{std::move(policies)}},
            payload{payload_type::kd, false, std::move(kd)}};
}

/// Periodic rekeys (rekey_period_seconds). The first period starts at the first tick (after the
/// rekey of a restart on stored state, group_runtime::rekey_at_start); a failed rekey is counted
/// and tried again a period later (members recover through the TEK lifetime).
void gcks::impl::rekey_due_groups()
{
    for (group_runtime& g : groups) {
        if (g.rekey_at_start) {
            g.rekey_at_start = false;
            ++counters.restart_rekeys;
            if (!rekey(g.config.group_id)) {
                ++counters.rekeys_failed;
            }
            continue;
        }
        if (g.config.rekey_period_seconds == 0) {
            continue;
        }
        if (!g.next_rekey) {
            g.next_rekey = now + std::chrono::seconds(g.config.rekey_period_seconds);
        } else if (now >= *g.next_rekey) {
            ++counters.periodic_rekeys;
            if (!rekey(g.config.group_id)) {
                ++counters.rekeys_failed;
                g.next_rekey = now + std::chrono::seconds(g.config.rekey_period_seconds);
            }
        }
    }
}

result<void> gcks::impl::rekey(uint32_t group_id)
{
    group_runtime* g = find_group(group_id);
    if (g == nullptr) {
        return error{errc::config_reference, "no group " + std::to_string(group_id)};
    }
    g->next_rekey = now + std::chrono::seconds(g->config.rekey_period_seconds);
    g->rekey_at_start = false;  // this one replaces it
    if (g->next_rekey_message_id == 0xffffffffu) {
        return error{errc::unsupported, "group " + std::to_string(group_id) + ": GSA_REKEY Message IDs exhausted"};
    }
    // The new TEK and the Message ID are committed together before anything goes on the wire.
    // If that fails the group keeps its TEK and no Message ID was taken (an unused SPI claim is
    // harmless).
    result<uint32_t> spi = fresh_spi(*g);
    if (!spi) {
        return spi.err();
    }
    const uint32_t old_spi = g->tek_spi;
    secret old_keymat = std::move(g->tek_keymat);
    g->tek_spi = *spi;
    g->tek_keymat = random_secret(g->config.tek_key_bits / 8 + gcm_salt_size);
    result<uint32_t> message_id = commit_rekey(*g, 1);
    if (!message_id) {
        g->tek_spi = old_spi;
        g->tek_keymat = std::move(old_keymat);
        return message_id.err();
    }
    g->previous_tek_spi = old_spi;
    g->previous_tek_keymat = std::move(old_keymat);
    g->previous_tek_until = now + std::chrono::milliseconds(g->config.registration_overlap_ms);
    result<std::vector<payload>> inner = tek_rekey_payloads(*g);
    if (!inner) {
        return inner.err();
    }
    return send_rekey(*g, std::move(*inner), *message_id, g->kek.view(), destinations(*g));
}

result<std::vector<payload>> gcks::impl::tek_rekey_payloads(const group_runtime& g) const
{
    result<attribute> sa_key = sa_key_attribute(g.tek_spi, g.tek_keymat, g.kek.view().first(kek_key_size), kwk_id_kek);
    if (!sa_key) {
        return sa_key.err();
    }
    return std::vector<payload>{
        payload{payload_type::gsa, false, gsa_payload{{tek_policy(g, g.tek_spi), group_wide_policy(g)}}},
        payload{payload_type::kd, false, kd_payload{{key_bag{key_bag_type::group, {std::move(*sa_key)}}}}}};
}

std::vector<endpoint> gcks::impl::destinations(const group_runtime& g) const
{
    if (!g.lkh) {
        return g.registered;
    }
    std::vector<endpoint> out;
    for (const auto& [leaf, m] : g.lkh->members) {
        if (std::find(out.begin(), out.end(), m.address) == out.end()) {
            out.push_back(m.address);
        }
    }
    return out;
}

result<void> gcks::impl::send_rekey(const group_runtime& g, std::vector<payload> inner, uint32_t message_id, byte_view kek,
                                    std::span<const endpoint> to)
{
    result<bytes> wire = seal_rekey(signer, g.kek_spi, message_id, std::move(inner), kek);
    if (!wire) {
        return wire.err();
    }
    if (g.config.rekey_address) {
        const uint32_t interface = g.config.rekey_interface != 0 ? g.config.rekey_interface : config.listen.address;
        if (result<void> set = socket.set_multicast_sender(interface, g.config.rekey_ttl); !set) {
            return set;
        }
        ++counters.rekeys_sent;
        send(*g.config.rekey_address, *wire);
        return {};
    }
    for (const endpoint& member : to) {
        ++counters.rekeys_sent;
        send(member, *wire);
    }
    return {};
}

// ---- Key tree (README.md "Key tree in the protocol") ----------------------------------------

/// The group's tree from the store (members queued to leave again, and those the config no
/// longer allows), or a new one; the KEK is the root's.
result<void> gcks::impl::load_key_tree(group_runtime& g)
{
    const group_config& gc = g.config;
    std::optional<lkh_tree> tree;
    std::vector<lkh_member_record> records;
    if (tree_store) {
        result<std::optional<lkh_tree>> loaded = tree_store->load(gc.group_id);
        if (!loaded) {
            return loaded.err();
        }
        if (*loaded) {
            result<std::vector<lkh_member_record>> stored = tree_store->members(gc.group_id);
            if (!stored) {
                return stored.err();
            }
            tree = std::move(**loaded);
            records = std::move(*stored);
        }
    }
    if (!tree) {
        result<lkh_tree> created = lkh_tree::create(lkh_config{gc.lkh_arity, gc.lkh_max_members, 16});
        if (!created) {
            return error{errc::config_bad_value, "group " + std::to_string(gc.group_id) + ": " + created.err().detail};
        }
        if (tree_store) {
            if (result<void> saved = tree_store->save_tree(gc.group_id, *created); !saved) {
                return saved;
            }
        }
        tree = std::move(*created);
    }
    g.lkh.emplace(key_tree_state{std::move(*tree), {}, {}, {}});
    if (result<secret> root = g.lkh->tree.group_key(); root) {
        g.kek = lkh_kek(root->view());
    }  // an empty tree has no root: the KEK from the store (or a new one) until the first join
    for (lkh_member_record& m : records) {
        const uint32_t leaf = m.leaf;
        g.lkh->members.emplace(leaf, std::move(m));
    }
    for (auto& [leaf, m] : g.lkh->members) {
        const bool allowed = std::find(gc.members.begin(), gc.members.end(), m.identity) != gc.members.end();
        if (m.leaving) {
            m.leaving = false;  // queue it again
            queue_leave(g, m);
        } else if (!allowed) {
            queue_leave(g, m);
        }
    }
    return {};
}

void gcks::impl::schedule_batch(group_runtime& g)
{
    if (!g.lkh->batch_due) {
        g.lkh->batch_due = now + std::chrono::milliseconds(g.config.rekey_batch_ms);
    }
}

void gcks::impl::queue_leave(group_runtime& g, lkh_member_record& m)
{
    if (m.leaving || !g.lkh->tree.remove_member(m.leaf)) {
        return;
    }
    m.leaving = true;
    ++counters.evictions;
    if (tree_store) {
        // An eviction queued but not committed survives a restart (load_key_tree queues it again).
        (void)tree_store->mark_leaving(g.config.group_id, m.leaf);
    }
    schedule_batch(g);
}

/// A joiner waits for the commit. A registration supersedes the identity's earlier leaf (and a
/// join of the same identity still waiting, whose answer is then never sent).
void gcks::impl::queue_join(group_runtime& g, uint64_t session, const std::string& identity, bool sender,
                            std::vector<payload> answer, const endpoint& address, uint32_t leaf)
{
    key_tree_state& t = *g.lkh;
    for (auto& [old_leaf, m] : t.members) {
        if (m.identity == identity) {
            queue_leave(g, m);
        }
    }
    std::erase_if(t.joins, [&](const pending_join& j) {
        return j.identity == identity && t.tree.remove_member(j.leaf).ok();
    });
    t.joins.push_back(pending_join{session, leaf, identity, address, sender, std::move(answer)});
    schedule_batch(g);
}

void gcks::impl::commit_due_batches()
{
    for (group_runtime& g : groups) {
        if (g.lkh && g.lkh->batch_due && now >= *g.lkh->batch_due) {
            g.lkh->batch_due.reset();
            if (g.lkh->tree.pending() != 0 && !commit_batch(g)) {
                ++counters.rekeys_failed;
            }
        }
    }
}

/// One batch: the tree commit and a new TEK are stored (with the Message IDs they use) before
/// anything is sent; then the membership rekey (path keys, no TEK) in MTU-sized parts under the
/// old KEK to the members from before the batch (leavers included, so they learn they left), the
/// TEK rekey under the new KEK to those who stay, and last the joiners' registration answers
/// (path keys, the new TEK, Message IDs after the TEK rekey): a joiner gets no earlier TEK
/// (backward access control), a leaver no later one (forward).
result<void> gcks::impl::commit_batch(group_runtime& g)
{
    key_tree_state& t = *g.lkh;
    const std::vector<endpoint> before = destinations(g);
    result<lkh_rekey> batch = t.tree.commit();
    if (!batch) {
        return batch.err();
    }
    std::vector<lkh_member_record> joined;
    for (const pending_join& j : t.joins) {
        joined.push_back(lkh_member_record{j.leaf, j.identity, j.address, false});
    }
    if (tree_store) {
        if (result<void> saved = tree_store->save_rekey(g.config.group_id, t.tree, *batch, joined); !saved) {
            return saved;  // members fail the next rekey and re-register
        }
    }
    const size_t mtu_budget = g.config.rekey_mtu > gsa_rekey_envelope_bytes ? g.config.rekey_mtu - gsa_rekey_envelope_bytes : 0;
    result<std::vector<bytes>> parts = encode_lkh_rekey(*batch, mtu_budget);
    if (!parts) {
        return parts.err();
    }
    if (uint64_t(g.next_rekey_message_id) + parts->size() + 1 > 0xffffffffu) {
        return error{errc::unsupported, "group " + std::to_string(g.config.group_id) + ": GSA_REKEY Message IDs exhausted"};
    }
    // New KEK and TEK, and the Message IDs of all parts and the TEK rekey, committed before use.
    result<uint32_t> spi = fresh_spi(g);
    if (!spi) {
        return spi.err();
    }
    secret old_kek = std::move(g.kek);
    result<secret> root = t.tree.group_key();
    g.kek = root ? lkh_kek(root->view()) : random_secret(kek_key_size + gcm_salt_size);  // empty: nobody to tell
    g.tek_spi = *spi;
    g.tek_keymat = random_secret(g.config.tek_key_bits / 8 + gcm_salt_size);
    g.next_rekey = now + std::chrono::seconds(g.config.rekey_period_seconds);
    result<uint32_t> first = commit_rekey(g, uint32_t(parts->size() + 1));
    if (!first) {
        return first.err();
    }
    const uint32_t first_id = *first;
    for (size_t i = 0; i < parts->size(); ++i) {
        result<std::vector<payload>> kd = decode_payload_chain(payload_type::kd, (*parts)[i]);
        if (!kd) {
            return kd.err();
        }
        if (result<void> sent = send_rekey(g, std::move(*kd), first_id + uint32_t(i), old_kek.view(), before); !sent) {
            return sent;
        }
    }
    for (uint32_t leaf : batch->left) {
        t.members.erase(leaf);
    }
    result<std::vector<payload>> tek = tek_rekey_payloads(g);
    if (!tek) {
        return tek.err();
    }
    const std::vector<endpoint> staying = destinations(g);
    if (result<void> sent = send_rekey(g, std::move(*tek), first_id + uint32_t(parts->size()), g.kek.view(), staying); !sent) {
        return sent;
    }
    ++counters.membership_rekeys;
    counters.membership_rekey_parts += parts->size();
    std::vector<pending_join> joins = std::move(t.joins);
    t.joins.clear();
    for (pending_join& j : joins) {
        lkh_member_record& record = t.members.emplace(j.leaf, lkh_member_record{j.leaf, j.identity, j.address, false}).first->second;
        auto it = sessions.find(j.session);
        if (it == sessions.end() || !it->second.awaiting_commit) {
            queue_leave(g, record);  // its IKE SA expired meanwhile: nobody holds the leaf
            continue;
        }
        std::vector<payload> keys = key_download(it->second, g, j.sender, j.identity, j.leaf);
        if (keys.empty()) {
            queue_leave(g, record);
            j.answer.push_back(notify(notify_type::registration_failed));
        } else {
            ++counters.registrations;
            j.answer.insert(j.answer.end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
        }
        finish_registration(it, j.answer);
    }
    return {};
}

result<std::unique_ptr<gcks>> gcks::create(gcks_config config)
{
    if (config.admission.datagrams_per_tick == 0) {
        return error{errc::config_bad_value, "gcks: admission.datagrams_per_tick must be at least 1"};
    }
    result<udp_socket> socket = udp_socket::open(config.listen);
    if (!socket) {
        return socket.err();
    }
    result<signing_key> signer = signing_key::generate();
    if (!signer) {
        return signer.err();
    }
    result<certificate_auth> certs = certificate_auth::load(config.certificates, config.identity);
    if (!certs) {
        return certs.err();
    }
    auto s = std::make_unique<impl>(std::move(config), std::move(*socket), std::move(*signer));
    s->certs = std::move(*certs);
    if (result<void> opened = s->open_store(); !opened) {
        return opened.err();
    }
    for (const group_config& gc : s->config.groups) {
        if (gc.tek_key_bits != 128 && gc.tek_key_bits != 256) {
            return error{errc::config_bad_value, "group " + std::to_string(gc.group_id) + ": tek_key_bits must be 128 or 256"};
        }
        for (const traffic_selector* ts : {&gc.source, &gc.destination}) {
            const size_t n = ts->ts_type == 7 ? 4 : ts->ts_type == 8 ? 16 : 0;
            if (n == 0 || ts->start_address.size() != n || ts->end_address.size() != n) {
                return error{errc::config_bad_value, "group " + std::to_string(gc.group_id) + ": bad traffic selector"};
            }
        }
        if (gc.sender_id_bits == 0 || gc.sender_id_bits > 32) {
            return error{errc::config_bad_value, "group " + std::to_string(gc.group_id) + ": sender_id_bits out of range"};
        }
        if (gc.rekey_address && !udp_socket::is_multicast(gc.rekey_address->address)) {
            return error{errc::config_bad_value, "group " + std::to_string(gc.group_id) + ": rekey_address " +
                                                     gc.rekey_address->to_string() + " is not IPv4 multicast"};
        }
        if (result<void> added = s->add_group(gc); !added) {
            return added.err();
        }
    }
    return std::unique_ptr<gcks>(new gcks(std::move(s)));
}

/// With a state_path: the database, and the signing key from it (or a new one, saved first).
result<void> gcks::impl::open_store()
{
    const bool on_etcd = !config.etcd_endpoints.empty();
    if (config.state_path.empty() && !on_etcd) {
        return {};
    }
    if (config.storage_key_path.empty()) {
        return error{errc::config_missing_key, std::string("gcks: ") + (on_etcd ? "etcd_endpoints" : "state_path") +
                                                   " needs storage_key_path (keys are never stored in clear)"};
    }
    if (config.sender_id_block == 0) {
        return error{errc::config_bad_value, "gcks: sender_id_block must be at least 1"};
    }
    result<secret> key = load_storage_key(config.storage_key_path);
    if (!key) {
        return key.err();
    }
    if (on_etcd) {
        return open_etcd(std::move(*key));
    }
    result<gcks_store> opened = gcks_store::open(config.state_path, key->clone());
    if (!opened) {
        return opened.err();
    }
    result<lkh_store> trees = lkh_store::open(config.state_path, std::move(*key));
    if (!trees) {
        return trees.err();
    }
    store = std::make_unique<gcks_store>(std::move(*opened));
    tree_store = std::make_unique<lkh_store>(std::move(*trees));
    return load_signing_key();
}

result<void> gcks::impl::load_signing_key()
{
    for (int attempt = 0; attempt < 2; ++attempt) {
        result<std::optional<secret>> der = store->signing_key_der();
        if (!der) {
            return der.err();
        }
        if (*der) {
            result<signing_key> k = signing_key::from_private_der((*der)->view());
            if (!k) {
                return k.err();
            }
            signer = std::move(*k);
            return {};
        }
        // Ours, unless another key server stored one first (etcd): read it back either way.
        if (result<void> saved = store->save_signing_key(signer.private_der().view()); !saved) {
            return saved;
        }
    }
    return error{errc::io, "gcks state: the signing key was saved but cannot be read back"};
}

/// Several key servers: the etcd client, the state under etcd_prefix, the election (a first step
/// now, so that a lone key server leads from the start).
result<void> gcks::impl::open_etcd(secret storage_key)
{
    if (config.leader_ttl_seconds < 2) {
        return error{errc::config_bad_value, "gcks: leader_ttl_seconds must be at least 2"};
    }
    if (config.candidate_id.empty()) {
        config.candidate_id = config.identity + "@" + socket.local().to_string();
    }
    const auto timeout = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000),
                                                             std::chrono::milliseconds(config.leader_ttl_seconds * 250));
    result<std::unique_ptr<etcd::client>> c = etcd::client::create(config.etcd_endpoints, timeout);
    if (!c) {
        return c.err();
    }
    etcd = std::move(*c);
    result<std::unique_ptr<etcd_store>> opened = etcd_store::open(*etcd, config.etcd_prefix, config.candidate_id,
                                                                   std::move(storage_key));
    if (!opened) {
        return opened.err();
    }
    election.emplace(*etcd, (*opened)->leader_key(), config.candidate_id, int64_t(config.leader_ttl_seconds));
    tree_store = (*opened)->key_trees();
    store = std::move(*opened);
    if (result<void> k = load_signing_key(); !k) {
        return k;
    }
    leading = false;
    result<bool> lead = election->step();
    if (!lead) {
        cluster_error = "etcd: " + lead.err().detail;
        back_off_after_failure(election_interval());
    } else if (*lead) {
        leading = true;
        renewed = clock::now();
        ++counters.leader_takeovers;
    }
    return {};
}

void gcks::impl::step_down(const std::string& why)
{
    if (leading) {
        ++counters.leader_step_downs;
    }
    leading = false;
    cluster_error = why;
    // Registrations in progress cannot be finished by a server that may not write the state.
    for (auto it = sessions.begin(); it != sessions.end();) {
        auto next = std::next(it);
        end_session(it);
        it = next;
    }
}

clock::duration gcks::impl::max_etcd_backoff() const
{
    return std::min<clock::duration>(std::chrono::seconds(30), std::chrono::seconds(2 * config.leader_ttl_seconds));
}

void gcks::impl::back_off_after_failure(clock::duration step)
{
    ++counters.etcd_errors;
    ++etcd_failures;
    if (leading) {
        return;  // next step at the usual interval: the lease needs renewing
    }
    // No quorum or no etcd: a standby (or a leader that stepped down) retries after 1, 2, 4 ...
    // step intervals, at most max_etcd_backoff(): no busy loop, bounded recovery time.
    clock::duration wait = step;
    for (uint64_t i = 1; i < etcd_failures && wait < max_etcd_backoff(); ++i) {
        wait *= 2;
    }
    wait = std::min(wait, max_etcd_backoff());
    etcd_backoff = std::chrono::duration_cast<std::chrono::milliseconds>(wait);
    next_election_step = clock::now() + wait;  // after the failed call, which may have blocked
}

/// One election step, every leader_ttl/4 (at most every 500 ms), backing off while etcd fails.
/// A leader whose last renewal is older than 2/3 of the TTL stops at once, before its lease can
/// expire and a standby can lead; a failed step before that keeps the lead (the lease still
/// holds) and retries.
void gcks::impl::election_step()
{
    const auto ttl = lease();
    const bool expired = leading && now - renewed >= ttl * 2 / 3;
    if (expired) {
        step_down("lease not renewed for 2/3 of leader_ttl_seconds");
    }
    if (now < next_election_step) {
        if (etcd_failures != 0) {
            ++counters.etcd_retries_deferred;
        }
        return;
    }
    const clock::duration step = election_interval();
    next_election_step = now + step;
    const bool was = leading;
    result<bool> lead = election->step();
    if (!lead) {
        if (was && now - renewed < ttl * 2 / 3) {
            back_off_after_failure(step);
            // The lease outlives this failure (e.g. etcd electing a new raft leader): keep leading
            // and renew at the next step; the check above ends it in time.
            cluster_error = "etcd: " + lead.err().detail;
            return;
        }
        step_down("etcd: " + lead.err().detail);
        back_off_after_failure(step);
        return;
    }
    etcd_failures = 0;
    etcd_backoff = std::chrono::milliseconds(0);
    if (!*lead) {
        if (was) {
            step_down("lost the leader key");
        } else if (!expired) {
            cluster_error.clear();  // a standby, etcd answering: nothing wrong
        }
        return;
    }
    if (!was) {
        if (result<void> loaded = take_over(); !loaded) {
            election->resign();  // let another key server try
            step_down("take-over: " + loaded.err().detail);
            back_off_after_failure(step);
            return;
        }
        ++counters.leader_takeovers;
    }
    leading = true;
    renewed = now;  // the renewal happened after now: the lease lasts at least ttl from here
    cluster_error.clear();
}

result<void> gcks::impl::take_over()
{
    if (result<void> k = load_signing_key(); !k) {
        return k;
    }
    for (group_runtime& g : groups) {
        g.registered.clear();
        g.lkh.reset();  // the tree as the last leader committed it (init_group_state loads it)
        if (result<void> loaded = load_group_state(g); !loaded) {
            return loaded;
        }
        if (result<void> ready = init_group_state(g); !ready) {
            return ready;
        }
        g.next_rekey.reset();  // a period from the next tick, like after a start
    }
    return {};
}

/// The group as the store left it (same TEK, KEK and Message IDs; Sender-IDs after the last
/// reservation), or a fresh one committed before use. A standby (etcd) only reads: the leader
/// owns the state, and a take-over loads it again.
result<void> gcks::impl::add_group(const group_config& gc)
{
    group_runtime g{gc, 0, {}, 1, random_secret(kek_key_size + gcm_salt_size), random_bytes(16), 1, {}, 1, {}, {}, false, 0, {}, {}};
    if (result<void> loaded = load_group_state(g); !loaded) {
        return loaded;
    }
    g.rekey_at_start = !etcd && g.tek_spi != 0 && !g.registered.empty();
    if (leading) {
        if (result<void> ready = init_group_state(g); !ready) {
            return ready;
        }
    }
    groups.push_back(std::move(g));
    return {};
}

result<void> gcks::impl::load_group_state(group_runtime& g)
{
    const group_config& gc = g.config;
    const size_t tek_size = gc.tek_key_bits / 8 + gcm_salt_size;
    if (store) {
        result<std::optional<stored_group>> loaded = store->load_group(gc.group_id);
        if (!loaded) {
            return loaded.err();
        }
        result<std::vector<endpoint>> members = store->members(gc.group_id);
        result<std::vector<sender_assignment>> assigned = store->sender_ids(gc.group_id);
        if (!members || !assigned) {
            return (!members ? members.err() : assigned.err());
        }
        if (stored_group* st = loaded->has_value() ? &**loaded : nullptr) {
            g.kek = std::move(st->kek);
            g.kek_spi = std::move(st->kek_spi);
            g.next_rekey_message_id = st->next_rekey_message_id;
            g.next_sender_id = g.sender_id_reserved = st->sender_id_reserved;
            if (!assigned->empty() && assigned->back().sender_id >= g.next_sender_id) {  // belt and braces
                g.next_sender_id = g.sender_id_reserved = assigned->back().sender_id + 1;
            }
            g.registered = std::move(*members);
            if (st->tek_keymat.size() == tek_size) {
                g.tek_spi = st->tek_spi;
                g.tek_keymat = std::move(st->tek_keymat);
            }
        }
    }
    return {};
}

result<void> gcks::impl::init_group_state(group_runtime& g)
{
    if (g.tek_spi == 0) {  // new group, or its TEK size changed in the config
        result<uint32_t> spi = fresh_spi(g);
        if (!spi) {
            return spi.err();
        }
        g.tek_spi = *spi;
        g.tek_keymat = random_secret(g.config.tek_key_bits / 8 + gcm_salt_size);
    }
    if (g.config.key_tree && !g.lkh) {
        if (result<void> tree = load_key_tree(g); !tree) {
            return tree;
        }
    }
    return persist(g);
}

result<uint32_t> gcks::impl::fresh_spi(const group_runtime& g)
{
    for (int attempt = 0; attempt < 64; ++attempt) {
        const uint32_t spi = random_spi();
        if (spi == g.tek_spi) {
            continue;
        }
        result<bool> ours = store ? store->claim_spi(spi, g.config.group_id) : result<bool>(true);
        if (!ours) {
            return ours.err();
        }
        if (*ours) {
            record_issued(issued_value::kind::tek_spi, g.config.group_id, spi);
            return spi;
        }
    }
    return error{errc::io, "group " + std::to_string(g.config.group_id) + ": no fresh TEK SPI after 64 tries"};
}

result<uint32_t> gcks::impl::commit_rekey(group_runtime& g, uint32_t count)
{
    uint32_t first = g.next_rekey_message_id;
    if (store) {
        result<uint32_t> reserved = store->save_group_taking_message_ids(g.snapshot(), count);
        if (!reserved) {
            return reserved;
        }
        first = *reserved;
    }
    if (uint64_t(first) + count > 0xffffffffu) {
        return error{errc::unsupported, "group " + std::to_string(g.config.group_id) + ": GSA_REKEY Message IDs exhausted"};
    }
    g.next_rekey_message_id = first + count;
    record_issued(issued_value::kind::message_id, g.config.group_id, first, count);
    return first;
}

/// Makes g.next_sender_id durable before it is handed out: commits the next block when the
/// current one is used up.
bool gcks::impl::reserve_sender_id(group_runtime& g, uint32_t limit)
{
    if (!store || g.next_sender_id < g.sender_id_reserved) {
        return true;
    }
    const uint64_t end = std::min<uint64_t>(uint64_t(g.next_sender_id) + config.sender_id_block, uint64_t(limit) + 1);
    const uint32_t count = uint32_t(std::min<uint64_t>(end, 0xffffffffu) - g.next_sender_id);
    result<uint32_t> first = store->reserve(g.config.group_id, gcks_state::counter::sender_id, g.next_sender_id, count);
    if (!first || *first > limit) {
        return false;
    }
    const uint32_t before = g.sender_id_reserved;
    const uint32_t next_before = g.next_sender_id;
    g.next_sender_id = *first;  // another key server may have taken the values in between (etcd)
    g.sender_id_reserved = uint32_t(std::min<uint64_t>(uint64_t(*first) + count, uint64_t(limit) + 1));
    if (!persist(g)) {
        g.sender_id_reserved = before;
        g.next_sender_id = next_before;
        return false;
    }
    return true;
}

gcks::gcks(std::unique_ptr<impl> s) : _s(std::move(s)) {}
gcks::~gcks() = default;

void gcks::tick(clock::time_point now)
{
    _s->now = now;
    if (_s->election) {
        _s->election_step();
        if (!_s->leading) {
            // A standby (or a leader without etcd) answers nobody: members retransmit and then
            // try their next key server.
            for (size_t n = 0; n < _s->config.admission.datagrams_per_tick && _s->socket.receive(); ++n) {
                ++_s->counters.not_leader_dropped;
            }
            return;
        }
    }
    _s->cookies.rotate_if_due(now, _s->config.admission.cookie_secret_lifetime);
    _s->expire_sessions();
    for (size_t n = 0; n < _s->config.admission.datagrams_per_tick; ++n) {
        std::optional<received_datagram> dg = _s->socket.receive();
        if (!dg) {
            break;
        }
        _s->handle(*dg);
    }
    _s->commit_due_batches();
    _s->rekey_due_groups();
}

result<void> gcks::rekey(uint32_t group_id)
{
    if (!_s->leading) {
        return error{errc::io, "gcks: not the leader of the key servers (" + _s->cluster_error + ")"};
    }
    return _s->rekey(group_id);
}

void gcks::resign()
{
    if (_s->election) {
        _s->election->resign();
        _s->step_down("resigned");
        _s->next_election_step = clock::time_point::max();  // no campaign after a clean stop
    }
}

bool gcks::leading() const
{
    return _s->leading;
}

const std::string& gcks::cluster_error() const
{
    return _s->cluster_error;
}

std::chrono::milliseconds gcks::etcd_backoff() const
{
    return _s->etcd_backoff;
}

uint64_t gcks::etcd_consecutive_failures() const
{
    return _s->etcd_failures;
}

std::vector<issued_value> gcks::take_issued()
{
    return std::exchange(_s->issued, {});
}

std::string_view to_string(issued_value::kind k)
{
    switch (k) {
    case issued_value::kind::tek_spi: return "TEK SPI";
    case issued_value::kind::sender_id: return "Sender-ID";
    case issued_value::kind::message_id: return "Message ID";
    }
    return "?";
}

size_t gcks::evict(const std::string& identity)
{
    size_t queued = 0;
    for (group_runtime& g : _s->groups) {
        if (!g.lkh) {
            continue;
        }
        for (auto& [leaf, m] : g.lkh->members) {
            if (m.identity == identity && !m.leaving) {
                _s->queue_leave(g, m);
                queued += m.leaving ? 1 : 0;
            }
        }
    }
    return queued;
}

result<void> gcks::set_members(uint32_t group_id, std::vector<std::string> members)
{
    group_runtime* g = _s->find_group(group_id);
    if (g == nullptr) {
        return error{errc::config_reference, "no group " + std::to_string(group_id)};
    }
    g->config.members = std::move(members);
    if (g->lkh) {
        for (auto& [leaf, m] : g->lkh->members) {
            if (std::find(g->config.members.begin(), g->config.members.end(), m.identity) == g->config.members.end()) {
                _s->queue_leave(*g, m);
            }
        }
    }
    return {};
}

const bytes& gcks::rekey_public_key() const
{
    return _s->signer.public_key_der();
}

const endpoint& gcks::local() const
{
    return _s->socket.local();
}

int gcks::fd() const
{
    return _s->socket.fd();
}

const gcks_counters& gcks::counters() const
{
    return _s->counters;
}

size_t gcks::half_open_sessions() const
{
    return _s->half_open;
}

size_t gcks::sessions() const
{
    return _s->sessions.size();
}

std::optional<group_status> gcks::status(uint32_t group_id) const
{
    const group_runtime* g = _s->find_group(group_id);
    if (g == nullptr) {
        return std::nullopt;
    }
    if (g->lkh) {
        return group_status{g->tek_spi, g->next_sender_id, g->next_rekey_message_id, g->lkh->members.size(),
                            g->lkh->tree.epoch(), g->lkh->tree.pending()};
    }
    return group_status{g->tek_spi, g->next_sender_id, g->next_rekey_message_id, g->registered.size(), 0, 0};
}

} // namespace msecgw::gkm
