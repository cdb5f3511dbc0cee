#include <algorithm>

#include "gkm.hh"
#include "cookies.hh"
#include "ike_sa.hh"
#include "registration.hh"
#include "rekey.hh"
#include "store.hh"

namespace msecgw::gkm {

namespace {

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

gsa_policy tek_policy(const group_runtime& g)
{
    gsa_policy tek = make_policy(
        gsa_policy_type::tek, protocol_id::esp, spi_bytes(g.tek_spi),
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
    return make_policy(gsa_policy_type::kek, protocol_id::gike_update, g.kek_spi,
                       {transform::make(transform_type::encr, encr_aes_gcm_16, kek_key_size * 8)},
                       {attribute::u32(uint16_t(gsa_attribute::initial_message_id), g.next_rekey_message_id)});
}

/// SA_KEY for the group's current TEK wrapped under kwk (KWK ID kwk_id).
result<attribute> sa_key_attribute(const group_runtime& g, byte_view kwk, uint32_t kwk_id)
{
    result<bytes> wrapped = key_wrap(kwk, g.tek_keymat.view());
    if (!wrapped) {
        return wrapped.err();
    }
    return attribute::long_form(uint16_t(group_key_attribute::sa_key),
                                wrapped_key{g.tek_spi, kwk_id, std::move(*wrapped)}.encode());
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
    std::optional<gcks_store> store;
    clock::time_point now = clock::now();  ///< of the current tick
    clock::time_point next_sweep = now;
    size_t half_open = 0;
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
    void handle_init(const received_datagram& dg, const message& m);
    void handle_gsa_auth(const received_datagram& dg, const message& m);
    std::vector<payload> answer_registration(responder_session& s, const std::vector<payload>& request);
    std::vector<payload> key_download(responder_session& s, group_runtime& g, bool sender, const std::string& identity);
    result<void> rekey(uint32_t group_id);
    void rekey_due_groups();
    result<void> open_store();
    result<void> add_group(const group_config& gc);
    /// A TEK SPI never issued before (by this process or, with a store, any earlier one).
    uint32_t fresh_spi(const group_runtime& g) const;
    result<void> persist(const group_runtime& g) { return store ? store->save_group(g.snapshot()) : result<void>(); }
    bool reserve_sender_id(group_runtime& g, uint32_t limit);
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
        return;  // we only answer requests from initiators
    }
    switch (m->header.exchange) {
    case exchange_type::ike_sa_init: handle_init(dg, *m); break;
    case exchange_type::gsa_auth: handle_gsa_auth(dg, *m); break;
    default: break;  // GSA_REGISTRATION, INFORMATIONAL: not yet
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
                                                key, now + config.admission.half_open_timeout, false, 1, 0, {}});
    ++half_open;
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
    return true;
}

void gcks::impl::end_session(std::map<uint64_t, responder_session>::iterator it)
{
    if (auto cached = init_responses.find(it->second.init);
        cached != init_responses.end() && cached->second.first == it->first) {
        init_responses.erase(cached);
    }
    if (!it->second.finished) {
        --half_open;
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
        return;  // outside the window of one (RFC 7296 §2.3)
    }
    result<std::vector<payload>> request = s.sa.open(m, dg.data);
    if (!request) {
        ++counters.malformed;
        return;
    }
    std::vector<payload> answer = answer_registration(s, *request);
    result<bytes> wire = s.sa.seal(exchange_type::gsa_auth, m.header.message_id, true, answer);
    if (!wire) {
        return;
    }
    s.last_message_id = m.header.message_id;
    s.next_message_id = m.header.message_id + 1;
    s.last_response = std::move(*wire);
    if (!s.finished) {
        s.finished = true;
        --half_open;
        s.expires = now + config.admission.finished_linger;
    }
    send(dg.source, s.last_response);
    if (find_payload<kd_payload>(answer, payload_type::kd) == nullptr) {
        // Refused (authentication, authorization, group): nothing to keep. Anyone who can do
        // IKE_SA_INIT could otherwise fill the GCKS with lingering refused sessions.
        ++counters.refused_sessions_ended;
        end_session(it);
    }
}

std::vector<payload> gcks::impl::answer_registration(responder_session& s, const std::vector<payload>& request)
{
    const auto* idi = find_payload<id_payload>(request, payload_type::idi);
    const auto* auth = find_payload<auth_payload>(request, payload_type::auth);
    const auto* idg = find_payload<id_payload>(request, payload_type::idg);
    if (idi == nullptr || auth == nullptr || idg == nullptr) {
        ++counters.malformed;
        return {notify(notify_type::invalid_syntax)};
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
        return {notify(notify_type::authentication_failed)};
    }
    const id_payload idr = key_id_payload(config.identity);
    std::vector<payload> answer{payload{payload_type::idr, false, idr}};
    if (certs.own) {
        result<std::vector<payload>> ours = certs.sign(s.sa, ike_role::responder, idr);
        if (!ours) {
            ++counters.authentication_failed;
            return {notify(notify_type::authentication_failed)};
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
                                              const std::string& identity)
{
    result<attribute> sa_key = sa_key_attribute(g, s.sa.wrap_key().view(), 0);
    result<bytes> wrapped_kek = key_wrap(s.sa.wrap_key().view(), g.kek.view());
    if (!sa_key || !wrapped_kek) {
        return {};
    }
    kd_payload kd;
    kd.bags.push_back(key_bag{key_bag_type::group, {std::move(*sa_key)}});
    // AUTH_KEY (RFC 9838 §4.5.3.2): the public key that signs GSA_REKEY, authenticated here by the
    // IKE SA, so members need no key file.
    key_bag member{key_bag_type::member,
                   {attribute::long_form(uint16_t(member_key_attribute::wrap_key),
                                         wrapped_key{kwk_id_kek, 0, std::move(*wrapped_kek)}.encode()),
                    attribute::long_form(uint16_t(member_key_attribute::auth_key), signer.public_key_der())}};
    std::optional<uint32_t> sender_id;
    if (sender) {
        const uint32_t limit = g.config.sender_id_bits >= 32 ? 0xffffffffu : (1u << g.config.sender_id_bits) - 1;
        if (g.next_sender_id > limit || g.next_sender_id == 0 || !reserve_sender_id(g, limit)) {
            return {};  // Sender-ID space exhausted (or not durable): never hand one out twice
        }
        sender_id = g.next_sender_id++;
        member.attributes.push_back(attribute::u32(uint16_t(member_key_attribute::gm_sender_id), *sender_id));
    }
    kd.bags.push_back(std::move(member));
    if (std::find(g.registered.begin(), g.registered.end(), s.peer) == g.registered.end()) {
        g.registered.push_back(s.peer);
    }
    if (store) {
        // A record for the operator; uniqueness does not depend on it (the Sender-ID's block was
        // committed before). A member whose address is lost gets no rekey after a restart and
        // re-registers when its TEK expires.
        (void)store->record_registration(g.config.group_id, s.peer, identity, sender_id);
    }
    return {payload{payload_type::gsa, false, gsa_payload{{kek_policy(g), tek_policy(g), group_wide_policy(g)}}},
            payload{payload_type::kd, false, std::move(kd)}};
}

/// Periodic rekeys (rekey_period_seconds). The first period starts at the first tick; a failed
/// rekey is counted and tried again a period later (members recover through the TEK lifetime).
void gcks::impl::rekey_due_groups()
{
    for (group_runtime& g : groups) {
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
    if (g->next_rekey_message_id == 0xffffffffu) {
        return error{errc::unsupported, "group " + std::to_string(group_id) + ": GSA_REKEY Message IDs exhausted"};
    }
    // The new TEK and the Message ID are committed before anything goes on the wire. If that
    // fails the group keeps its TEK; the Message ID is burnt (a gap is harmless, a reuse is not).
    const uint32_t old_spi = g->tek_spi;
    secret old_keymat = std::move(g->tek_keymat);
    g->tek_spi = fresh_spi(*g);
    g->tek_keymat = random_secret(g->config.tek_key_bits / 8 + gcm_salt_size);
    const uint32_t message_id = g->next_rekey_message_id++;
    if (result<void> saved = persist(*g); !saved) {
        g->tek_spi = old_spi;
        g->tek_keymat = std::move(old_keymat);
        return saved;
    }
    result<attribute> sa_key = sa_key_attribute(*g, g->kek.view().first(kek_key_size), kwk_id_kek);
    if (!sa_key) {
        return sa_key.err();
    }
    std::vector<payload> inner{
        payload{payload_type::gsa, false, gsa_payload{{tek_policy(*g), group_wide_policy(*g)}}},
        payload{payload_type::kd, false, kd_payload{{key_bag{key_bag_type::group, {std::move(*sa_key)}}}}}};
    wire_reader spi(g->kek_spi);
    ike_header h{*spi.u64(), *spi.u64(), payload_type::none, ike_version_2, exchange_type::gsa_rekey,
                 flag_initiator, message_id, 0};
    result<bytes> signature = signer.sign(rekey_signed_octets(h, inner));
    if (!signature) {
        return signature.err();
    }
    bytes auth_data(std::begin(ecdsa_sha256_prefix), std::end(ecdsa_sha256_prefix));
    auth_data.insert(auth_data.end(), signature->begin(), signature->end());
    inner.push_back(payload{payload_type::auth, false, auth_payload{auth_method::digital_signature, std::move(auth_data)}});
    bytes iv;
    wire_writer(iv).u64(h.message_id);  // unique per KEK: Message IDs never repeat
    result<bytes> wire = seal_message(h, inner, g->kek.view(), iv);
    if (!wire) {
        return wire.err();
    }
    for (const endpoint& member : g->registered) {
        ++counters.rekeys_sent;
        send(member, *wire);
    }
    return {};
}

result<std::unique_ptr<gcks>> gcks::create(gcks_config config)
{
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
        if (result<void> added = s->add_group(gc); !added) {
            return added.err();
        }
    }
    return std::unique_ptr<gcks>(new gcks(std::move(s)));
}

/// With a state_path: the database, and the signing key from it (or a new one, saved first).
result<void> gcks::impl::open_store()
{
    if (config.state_path.empty()) {
        return {};
    }
    if (config.storage_key_path.empty()) {
        return error{errc::config_missing_key, "gcks: state_path needs storage_key_path (keys are never stored in clear)"};
    }
    if (config.sender_id_block == 0) {
        return error{errc::config_bad_value, "gcks: sender_id_block must be at least 1"};
    }
    result<secret> key = load_storage_key(config.storage_key_path);
    if (!key) {
        return key.err();
    }
    result<gcks_store> opened = gcks_store::open(config.state_path, std::move(*key));
    if (!opened) {
        return opened.err();
    }
    store = std::move(*opened);
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
    return store->save_signing_key(signer.private_der().view());
}

/// The group as the store left it (same TEK, KEK and Message IDs; Sender-IDs after the last
/// reservation), or a fresh one committed before use.
result<void> gcks::impl::add_group(const group_config& gc)
{
    const size_t tek_size = gc.tek_key_bits / 8 + gcm_salt_size;
    group_runtime g{gc, 0, {}, 1, random_secret(kek_key_size + gcm_salt_size), random_bytes(16), 1, {}, 1, {}};
    if (store) {
        result<std::optional<stored_group>> loaded = store->load_group(gc.group_id);
        if (!loaded) {
            return loaded.err();
        }
        result<std::vector<endpoint>> members = store->members(gc.group_id);
        result<std::vector<gcks_store::sender_assignment>> assigned = store->sender_ids(gc.group_id);
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
    if (g.tek_spi == 0) {  // new group, or its TEK size changed in the config
        g.tek_spi = fresh_spi(g);
        g.tek_keymat = random_secret(tek_size);
    }
    if (result<void> saved = persist(g); !saved) {
        return saved;
    }
    groups.push_back(std::move(g));
    return {};
}

uint32_t gcks::impl::fresh_spi(const group_runtime& g) const
{
    uint32_t spi = random_spi();
    while (spi == g.tek_spi || (store && store->spi_issued(spi))) {
        spi = random_spi();
    }
    return spi;
}

/// Makes g.next_sender_id durable before it is handed out: commits the next block when the
/// current one is used up.
bool gcks::impl::reserve_sender_id(group_runtime& g, uint32_t limit)
{
    if (!store || g.next_sender_id < g.sender_id_reserved) {
        return true;
    }
    const uint64_t end = std::min<uint64_t>(uint64_t(g.next_sender_id) + config.sender_id_block, uint64_t(limit) + 1);
    const uint32_t before = g.sender_id_reserved;
    g.sender_id_reserved = uint32_t(std::min<uint64_t>(end, 0xffffffffu));
    if (!persist(g)) {
        g.sender_id_reserved = before;
        return false;
    }
    return true;
}

gcks::gcks(std::unique_ptr<impl> s) : _s(std::move(s)) {}
gcks::~gcks() = default;

void gcks::tick(clock::time_point now)
{
    _s->now = now;
    _s->cookies.rotate_if_due(now, _s->config.admission.cookie_secret_lifetime);
    _s->expire_sessions();
    while (std::optional<received_datagram> dg = _s->socket.receive()) {
        _s->handle(*dg);
    }
    _s->rekey_due_groups();
}

result<void> gcks::rekey(uint32_t group_id)
{
    return _s->rekey(group_id);
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
    return group_status{g->tek_spi, g->next_sender_id, g->next_rekey_message_id, g->registered.size()};
}

} // namespace msecgw::gkm
