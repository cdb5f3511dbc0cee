#include <algorithm>
#include <fstream>

#include "gkm.hh"
#include "ike_sa.hh"
#include "lkh.hh"
#include "registration.hh"
#include "rekey.hh"

namespace msecgw::gkm {

namespace {

/// TEKs a member holds: the newest and two before it (see handle_rekey).
constexpr size_t max_held_teks = 3;

/// The request waiting for its response, and when to send it again (RFC 7296 §2.1).
struct outstanding_request {
    bytes wire;
    uint32_t message_id = 0;
    clock::time_point next_send;
    clock::duration interval{};
    unsigned transmissions = 0;
};

uint64_t random_spi64()
{
    uint64_t v = 0;
    while (v == 0) {
        bytes b = random_bytes(8);
        v = *wire_reader(b).u64();
    }
    return v;
}

} // namespace

std::string_view to_string(member_state s)
{
    switch (s) {
    case member_state::idle: return "idle";
    case member_state::ike_sa_init_sent: return "ike_sa_init_sent";
    case member_state::gsa_auth_sent: return "gsa_auth_sent";
    case member_state::registered: return "registered";
    case member_state::rejected: return "rejected";
    case member_state::timed_out: return "timed_out";
    case member_state::failed: return "failed";
    }
    return "unknown";
}

struct group_member::impl {
    impl(member_config c, udp_socket s) : config(std::move(c)), socket(std::move(s)) {}

    member_config config;
    udp_socket socket;
    certificate_auth certs;  ///< our certificate (instead of the PSK) and the CA a signing GCKS chains to
    member_state phase = member_state::idle;
    std::optional<ecdh_key> dh;
    uint64_t spi_i = 0;
    bytes nonce_i;
    std::optional<ike_sa> sa;
    std::optional<outstanding_request> pending;
    std::optional<group_membership> membership;
    std::optional<notify_type> rejection;
    std::string last_error;
    uint64_t transmissions = 0;
    /// Verifies GSA_REKEY: config.gcks_public_key, else the AUTH_KEY of the last registration.
    std::optional<verify_key> gcks_key;
    unsigned cookie_rounds = 0;  ///< COOKIE retries of the current IKE_SA_INIT
    clock::time_point tek_installed;            ///< when the newest TEK arrived
    bool recovering = false;                    ///< the registration in progress is a recovery
    std::optional<clock::time_point> retry_at;  ///< next attempt after a failed recovery
    member_counters counters;

    /// The rekey SA the GCKS gave us at registration.
    struct rekey_sa {
        bytes spi;  ///< 16 bytes
        secret kek; ///< key ‖ salt
        uint32_t last_message_id = 0;
    };
    std::optional<rekey_sa> rekey;

    /// Key tree groups: the path keys (the KEK derives from the root) and the parts of the
    /// membership rekey being collected.
    std::optional<lkh_member_keys> key_path;
    struct lkh_parts {
        uint32_t epoch = 0;
        uint16_t count = 0;
        std::map<uint16_t, bytes> parts;  ///< encoded KD payload by part index
    };
    std::optional<lkh_parts> collecting;
    std::optional<udp_socket> multicast;  ///< joined to the KEK policy's rekey address

    size_t server = 0;          ///< index into config.key_servers
    size_t failovers_left = 0;  ///< key servers still to try for the registration in progress

    const endpoint& gcks() const
    {
        return config.key_servers.empty() ? config.gcks : config.key_servers[server % config.key_servers.size()];
    }

    void transmit(byte_view data)
    {
        if (config.observer) {
            config.observer(datagram_direction::sent, socket.local(), gcks(), data);
        }
        ++transmissions;
        socket.send_to(gcks(), data);
    }

    void send_request(bytes wire, uint32_t message_id, clock::time_point now)
    {
        pending = outstanding_request{std::move(wire), message_id, now + config.retransmit.initial,
                                      config.retransmit.initial, 1};
        transmit(pending->wire);
    }

    void fail(member_state s, std::string why)
    {
        phase = s;
        pending.reset();
        last_error = std::move(why);
        if (recovering && (s == member_state::timed_out || s == member_state::failed)) {
            retry_at = last_progress + config.recovery_retry;
        }
        if (s == member_state::rejected) {
            membership.reset();  // refused on re-registration: the keys we held are revoked
            rekey.reset();
            key_path.reset();
            collecting.reset();
        }
    }

    /// failover: the same registration again at the next key server (the round is not restarted).
    void start(clock::time_point now, bool keep_keys = false, bool failover = false);
    void recover(clock::time_point now);
    void check_recovery(clock::time_point now);
    clock::time_point last_progress;  ///< time of the latest tick (for fail())
    void retransmit_if_due(clock::time_point now);
    void handle(const received_datagram& dg, clock::time_point now);
    void handle_init_response(const message& m, byte_view wire, clock::time_point now);
    void retry_with_cookie(const notify_payload& cookie, clock::time_point now);
    void handle_auth_response(const message& m, byte_view wire, clock::time_point now);
    bool verify_gcks(const std::vector<payload>& answer);
    result<group_membership> accept_keys(const std::vector<payload>& answer, byte_view kwk, uint32_t kwk_id) const;
    result<rekey_sa> accept_kek(const std::vector<payload>& answer);
    /// Joins the multicast rekey address the KEK policy names (if any, and not joined yet).
    void join_rekey_address(const gsa_policy& kek);
    /// A part of a membership rekey (key tree groups): collect, then apply with all parts.
    void handle_key_tree_part(const kd_payload& kd, clock::time_point now);
    /// A GSA_REKEY for our rekey SA that does not open under our KEK: in a key tree group, a
    /// membership rekey we could not apply came before it.
    void handle_unopenable_rekey(const message& m, clock::time_point now);
    /// AUTH_KEY of a GSA_AUTH answer: becomes the rekey verification key (or must match the configured one).
    result<void> accept_auth_key(const std::vector<payload>& answer);
    void handle_rekey(const message& m, byte_view wire, clock::time_point now);
    bool rekey_signature_ok(const message& m, const std::vector<payload>& inner) const;
    void write_keylog() const;
};

/// RFC 7296 §2.6: the same IKE_SA_INIT (SPIi, KE, Ni) again with N(COOKIE) first. A few rounds
/// only (a secret rotation may need a second); after that the answer is ignored and the
/// retransmission timer decides.
void group_member::impl::retry_with_cookie(const notify_payload& cookie, clock::time_point now)
{
    constexpr unsigned max_cookie_rounds = 3;
    if (cookie.data.empty() || cookie.data.size() > 64 || cookie_rounds >= max_cookie_rounds) {
        return;
    }
    result<message> request = decode_message(pending->wire);
    if (!request) {
        return;
    }
    std::erase_if(request->payloads, [](const payload& p) {
        return p.type == payload_type::notify && std::get<notify_payload>(p.body).type == notify_type::cookie;
    });
    payload n = notify(notify_type::cookie);
    std::get<notify_payload>(n.body).data = cookie.data;
    request->payloads.insert(request->payloads.begin(), std::move(n));
    ++cookie_rounds;
    send_request(encode_message(*request), 0, now);
}

void group_member::impl::start(clock::time_point now, bool keep_keys, bool failover)
{
    if (!failover) {
        failovers_left = config.key_servers.empty() ? 0 : config.key_servers.size() - 1;
    }
    recovering = keep_keys;
    retry_at.reset();
    result<ecdh_key> key = ecdh_key::generate(config.group);
    if (!key) {
        fail(member_state::failed, key.err().detail);
        return;
    }
    dh = std::move(*key);
    spi_i = random_spi64();
    nonce_i = random_bytes(our_nonce_size);
    cookie_rounds = 0;
    sa.reset();
    if (!keep_keys) {
        membership.reset();
    }
    rejection.reset();
    last_error.clear();
    phase = member_state::ike_sa_init_sent;
    send_request(encode_message(ike_sa_init_request(spi_i, config.group, dh->public_value(), nonce_i)), 0, now);
}

void group_member::impl::retransmit_if_due(clock::time_point now)
{
    if (!pending || now < pending->next_send) {
        return;
    }
    if (pending->transmissions >= config.retransmit.max_transmissions && failovers_left > 0) {
        // This key server does not answer: the same registration (or recovery) at the next one.
        --failovers_left;
        server = (server + 1) % config.key_servers.size();
        ++counters.gcks_failovers;
        start(now, recovering, true);
        return;
    }
    if (pending->transmissions >= config.retransmit.max_transmissions) {
        fail(member_state::timed_out, "no response from " + gcks().to_string() + " after " +
                                          std::to_string(pending->transmissions) + " transmissions");
        return;
    }
    pending->interval *= 2;
    pending->next_send = now + pending->interval;
    ++pending->transmissions;
    transmit(pending->wire);
}

void group_member::impl::handle(const received_datagram& dg, clock::time_point now)
{
    if (config.observer) {
        config.observer(datagram_direction::received, socket.local(), dg.source, dg.data);
    }
    result<message> m = decode_message(dg.data);
    if (m && m->header.exchange == exchange_type::gsa_rekey) {
        handle_rekey(*m, dg.data, now);
        return;
    }
    if (!pending || !(dg.source == gcks())) {
        return;
    }
    if (!m || !m->header.is_response() || m->header.from_initiator() || m->header.spi_i != spi_i ||
        m->header.message_id != pending->message_id) {
        return;  // not the answer we wait for: keep waiting (and retransmitting)
    }
    if (phase == member_state::ike_sa_init_sent && m->header.exchange == exchange_type::ike_sa_init) {
        handle_init_response(*m, dg.data, now);
    } else if (phase == member_state::gsa_auth_sent && m->header.exchange == exchange_type::gsa_auth) {
        handle_auth_response(*m, dg.data, now);
    }
}

void group_member::impl::handle_init_response(const message& m, byte_view wire, clock::time_point now)
{
    if (const notify_payload* cookie = find_notify(m.payloads, notify_type::cookie)) {
        retry_with_cookie(*cookie, now);
        return;
    }
    if (const notify_payload* n = find_error_notify(m.payloads)) {
        rejection = n->type;
        fail(member_state::rejected, "IKE_SA_INIT refused with notify " + std::to_string(uint16_t(n->type)));
        return;
    }
    const auto* sa_offer = find_payload<sa_payload>(m.payloads, payload_type::sa);
    const auto* ke = find_payload<ke_payload>(m.payloads, payload_type::ke);
    const auto* nr = find_payload<nonce_payload>(m.payloads, payload_type::nonce);
    if (sa_offer == nullptr || ke == nullptr || nr == nullptr || m.header.spi_r == 0 ||
        ke->group != static_cast<uint16_t>(config.group) || !choose_ike_proposal(*sa_offer, config.group)) {
        return;  // unusable answer: an attacker's or garbage; keep waiting for the real one
    }
    result<secret> shared = dh->shared_secret(ke->data);
    if (!shared) {
        return;
    }
    ike_init_exchange init{spi_i, m.header.spi_r, nonce_i, nr->data, pending->wire, bytes(wire.begin(), wire.end())};
    ike_sa_keys keys = derive_ike_sa_keys(init.nonce_i, init.nonce_r, shared->view(), init.spi_i, init.spi_r,
                                          ike_encr_key_size);
    sa.emplace(ike_role::initiator, std::move(init), std::move(keys));
    dh.reset();
    write_keylog();

    const id_payload idi = key_id_payload(config.identity);
    std::vector<payload> inner{payload{payload_type::idi, false, idi}};
    if (certs.own) {
        result<std::vector<payload>> signed_auth = certs.sign(*sa, ike_role::initiator, idi);
        if (!signed_auth) {
            fail(member_state::failed, signed_auth.err().detail);
            return;
        }
        inner.insert(inner.end(), std::make_move_iterator(signed_auth->begin()), std::make_move_iterator(signed_auth->end()));
    } else {
        secret auth = sa->psk_auth(config.psk, ike_role::initiator, idi);
        inner.push_back(payload{payload_type::auth, false,
                                auth_payload{auth_method::shared_key_mic, bytes(auth.view().begin(), auth.view().end())}});
    }
    inner.push_back(payload{payload_type::idg, false, group_id_payload(config.group_id)});
    if (config.sender) {
        inner.push_back(notify(notify_type::group_sender));
    }
    result<bytes> request = sa->seal(exchange_type::gsa_auth, 1, false, inner);
    if (!request) {
        fail(member_state::failed, request.err().detail);
        return;
    }
    phase = member_state::gsa_auth_sent;
    send_request(std::move(*request), 1, now);
}

bool group_member::impl::verify_gcks(const std::vector<payload>& answer)
{
    const auto* idr = find_payload<id_payload>(answer, payload_type::idr);
    const auto* auth = find_payload<auth_payload>(answer, payload_type::auth);
    if (idr == nullptr || auth == nullptr || identity_of(*idr) != config.gcks_identity) {
        return false;
    }
    if (auth->method == auth_method::digital_signature) {
        return certs.verify(answer, *sa, ike_role::responder, *idr, config.gcks_identity).ok();
    }
    return auth->method == auth_method::shared_key_mic && !config.psk.empty() &&
           equal_constant_time(auth->data, sa->psk_auth(config.psk, ike_role::responder, *idr).view());
}

void group_member::impl::handle_auth_response(const message& m, byte_view wire, clock::time_point now)
{
    result<std::vector<payload>> answer = sa->open(m, wire);
    if (!answer) {
        return;  // forged or corrupted: ignore, the retransmission timer still runs
    }
    const notify_payload* refusal = find_error_notify(*answer);
    if (refusal != nullptr && refusal->type == notify_type::authentication_failed) {
        rejection = refusal->type;
        fail(member_state::rejected, "GCKS: AUTHENTICATION_FAILED");
        return;
    }
    if (!verify_gcks(*answer)) {
        fail(member_state::failed, "GCKS identity or AUTH does not verify");
        return;
    }
    if (refusal != nullptr) {
        rejection = refusal->type;
        fail(member_state::rejected, "GCKS refused registration with notify " + std::to_string(uint16_t(refusal->type)));
        return;
    }
    result<group_membership> keys = accept_keys(*answer, sa->wrap_key().view(), 0);
    if (!keys) {
        fail(member_state::failed, keys.err().detail);
        return;
    }
    if (auto pinned = accept_auth_key(*answer); !pinned) {
        fail(member_state::failed, pinned.err().detail);
        return;
    }
    result<rekey_sa> kek = accept_kek(*answer);
    if (kek) {
        rekey = std::move(*kek);
    } else {
        rekey.reset();  // no rekey SA: we re-register when the TEK expires
    }
    // A recovery keeps the TEK it held as an older one (overlap), unless the answer has it (the
    // current TEK, or the previous one of a registration just after a rekey).
    if (membership && !membership->teks.empty() &&
        std::none_of(keys->teks.begin(), keys->teks.end(), [&](const tek& t) { return t.spi == membership->teks.front().spi; })) {
        keys->teks.push_back(std::move(membership->teks.front()));
    }
    membership = std::move(*keys);
    tek_installed = now;
    recovering = false;
    pending.reset();
    phase = member_state::registered;
}

/// Re-registers without dropping the keys in use (make-before-break); the GCKS answers with
/// the current TEK, a fresh Sender-ID and the rekey SA's next Message ID.
void group_member::impl::recover(clock::time_point now)
{
    ++counters.reregistrations;
    start(now, true);
}

void group_member::impl::check_recovery(clock::time_point now)
{
    if (phase == member_state::timed_out && retry_at && now >= *retry_at && membership) {
        recover(now);
        return;
    }
    if (phase != member_state::registered || !config.reregister_on_expiry || !membership || membership->teks.empty()) {
        return;
    }
    const uint32_t lifetime = membership->teks.front().lifetime_seconds;
    if (lifetime != 0 && now - tek_installed >= std::chrono::seconds(lifetime)) {
        recover(now);
    }
}

result<group_membership> group_member::impl::accept_keys(const std::vector<payload>& answer, byte_view kwk,
                                                        uint32_t kwk_id) const
{
    const auto* gsa = find_payload<gsa_payload>(answer, payload_type::gsa);
    const auto* kd = find_payload<kd_payload>(answer, payload_type::kd);
    if (gsa == nullptr || kd == nullptr) {
        return make_error(reason::missing_payload, "GSA_AUTH response without GSA and KD");
    }
    group_membership out;
    out.group_id = config.group_id;
    for (const key_bag& bag : kd->bags) {
        for (const attribute& a : bag.attributes) {
            if (bag.type == key_bag_type::member && a.type == uint16_t(member_key_attribute::gm_sender_id)) {
                auto id = a.as_uint();
                if (!id || a.value.size() != 4) {
                    return make_error(reason::bad_attribute, "GM_SENDER_ID");
                }
                out.sender_id = static_cast<uint32_t>(*id);
            }
        }
    }
    for (const gsa_policy& p : gsa->policies) {
        if (p.type == gsa_policy_type::group_wide) {
            if (const attribute* bits = find_attribute(p.attributes, uint16_t(gwp_attribute::sender_id_bits))) {
                out.sender_id_bits = static_cast<uint8_t>(bits->as_uint().value_or(0));
            }
            continue;
        }
        if (p.type != gsa_policy_type::tek || p.protocol != protocol_id::esp || p.spi.size() != 4) {
            continue;
        }
        tek t;
        t.spi = load_be32(p.spi.data());
        t.source = p.source;
        t.destination = p.destination;
        const transform* encr = nullptr;
        for (const transform& tr : p.transforms) {
            encr = tr.type == transform_type::encr ? &tr : encr;
        }
        if (encr == nullptr || encr->id != encr_aes_gcm_16 || !encr->key_length_bits() ||
            (*encr->key_length_bits() != 128 && *encr->key_length_bits() != 256)) {
            return make_error(reason::unsupported, "TEK transform");
        }
        t.key_bits = *encr->key_length_bits();
        if (const attribute* life = find_attribute(p.attributes, uint16_t(gsa_attribute::key_lifetime))) {
            t.lifetime_seconds = static_cast<uint32_t>(life->as_uint().value_or(0));
        }
        // The SA_KEY whose Key ID is this SPI, unwrapped with GSK_w (KWK ID 0).
        for (const key_bag& bag : kd->bags) {
            for (const attribute& a : bag.attributes) {
                if (bag.type != key_bag_type::group || a.type != uint16_t(group_key_attribute::sa_key)) {
                    continue;
                }
                result<wrapped_key> wk = wrapped_key::decode(a.value);
                if (!wk || wk->key_id != t.spi || wk->kwk_id != kwk_id) {
                    continue;
                }
                result<secret> keymat = key_unwrap(kwk, wk->wrapped);
                if (!keymat) {
                    return keymat.err();
                }
                if (keymat->size() != t.key_bits / 8u + gcm_salt_size) {
                    return make_error(reason::bad_length, "TEK keying material length");
                }
                t.key = keymat->first(t.key_bits / 8u);
                t.salt = keymat->after(t.key_bits / 8u);
            }
        }
        if (t.key.empty()) {
            return make_error(reason::missing_payload, "no SA_KEY for TEK SPI " + std::to_string(t.spi));
        }
        out.teks.push_back(std::move(t));
    }
    if (out.teks.empty()) {
        return make_error(reason::missing_payload, "no usable TEK policy");
    }
    if (out.sender_id && (out.sender_id_bits == 0 || out.sender_id_bits > 32 ||
                          (out.sender_id_bits < 32 && *out.sender_id >> out.sender_id_bits) != 0)) {
        return make_error(reason::bad_attribute, "Sender-ID does not fit GWP_SENDER_ID_BITS");
    }
    return out;
}

auto group_member::impl::accept_kek(const std::vector<payload>& answer) -> result<rekey_sa>
{
    const auto* gsa = find_payload<gsa_payload>(answer, payload_type::gsa);
    const auto* kd = find_payload<kd_payload>(answer, payload_type::kd);
    const gsa_policy* kek = nullptr;
    for (const gsa_policy& p : gsa->policies) {
        kek = p.type == gsa_policy_type::kek && p.protocol == protocol_id::gike_update && p.spi.size() == 16 ? &p : kek;
    }
    if (kek == nullptr) {
        return make_error(reason::missing_payload, "no KEK policy");
    }
    const attribute* initial = find_attribute(kek->attributes, uint16_t(gsa_attribute::initial_message_id));
    if (initial == nullptr || !initial->as_uint() || *initial->as_uint() == 0) {
        return make_error(reason::bad_attribute, "GSA_INITIAL_MESSAGE_ID");
    }
    join_rekey_address(*kek);
    const uint32_t last_id = static_cast<uint32_t>(*initial->as_uint() - 1);
    key_path.reset();
    collecting.reset();
    for (const key_bag& bag : kd->bags) {
        // Key tree: the epoch, then the path keys under GSK_w; the KEK derives from the root.
        const attribute* epoch = bag.type == key_bag_type::member ? find_attribute(bag.attributes, lkh_epoch_attribute) : nullptr;
        if (epoch == nullptr) {
            continue;
        }
        result<std::vector<lkh_path_key>> path = decode_lkh_path(bag.attributes, sa->wrap_key().view());
        result<lkh_member_keys> keys = path ? lkh_member_keys::from_path(*path, uint32_t(epoch->as_uint().value_or(0)))
                                            : result<lkh_member_keys>(path.err());
        if (!keys || !epoch->as_uint()) {
            return make_error(reason::bad_attribute, "key tree path: " + (keys ? std::string("epoch") : keys.err().detail));
        }
        key_path = std::move(*keys);
        return rekey_sa{kek->spi, lkh_kek(key_path->group_key()), last_id};
    }
    for (const key_bag& bag : kd->bags) {
        const attribute* wrap = bag.type == key_bag_type::member
                                    ? find_attribute(bag.attributes, uint16_t(member_key_attribute::wrap_key))
                                    : nullptr;
        result<wrapped_key> wk = wrap ? wrapped_key::decode(wrap->value) : result<wrapped_key>(make_error(reason::missing_payload, "WRAP_KEY"));
        if (!wk || wk->key_id != kwk_id_kek || wk->kwk_id != 0) {
            continue;
        }
        result<secret> key = key_unwrap(sa->wrap_key().view(), wk->wrapped);
        if (!key || key->size() != kek_key_size + gcm_salt_size) {
            return make_error(reason::bad_attribute, "WRAP_KEY");
        }
        return rekey_sa{kek->spi, std::move(*key), last_id};
    }
    return make_error(reason::missing_payload, "no WRAP_KEY for the KEK");
}

result<void> group_member::impl::accept_auth_key(const std::vector<payload>& answer)
{
    const auto* kd = find_payload<kd_payload>(answer, payload_type::kd);
    if (kd == nullptr) {
        return {};
    }
    const attribute* auth_key = nullptr;
    for (const key_bag& bag : kd->bags) {
        if (bag.type == key_bag_type::member) {
            auth_key = find_attribute(bag.attributes, uint16_t(member_key_attribute::auth_key));
            break;
        }
    }
    if (auth_key == nullptr) {
        return {};  // no AUTH_KEY: rekeys verify with the configured key, if any
    }
    if (!config.gcks_public_key.empty()) {
        // A configured key pins the GCKS: a different AUTH_KEY is refused.
        if (!std::equal(auth_key->value.begin(), auth_key->value.end(), config.gcks_public_key.begin(),
                        config.gcks_public_key.end())) {
            return make_error(reason::bad_attribute, "AUTH_KEY differs from the configured gcks_public_key");
        }
        return {};
    }
    result<verify_key> k = verify_key::parse(auth_key->value);
    if (!k) {
        return make_error(reason::bad_attribute, "AUTH_KEY: " + k.err().detail);
    }
    gcks_key = std::move(*k);
    return {};
}

bool group_member::impl::rekey_signature_ok(const message& m, const std::vector<payload>& inner) const
{
    if (!gcks_key || inner.empty() || inner.back().type != payload_type::auth) {
        return false;
    }
    const auto& auth = std::get<auth_payload>(inner.back().body);
    const byte_view prefix(ecdsa_sha256_prefix);
    if (auth.method != auth_method::digital_signature || auth.data.size() <= prefix.size() ||
        !std::equal(prefix.begin(), prefix.end(), auth.data.begin())) {
        return false;
    }
    const bytes signed_octets = rekey_signed_octets(m.header, std::span(inner).first(inner.size() - 1));
    return gcks_key->verify(signed_octets, byte_view(auth.data).subspan(prefix.size()));
}

void group_member::impl::handle_rekey(const message& m, byte_view wire, clock::time_point now)
{
    bytes spi;
    wire_writer(spi).u64(m.header.spi_i);
    wire_writer(spi).u64(m.header.spi_r);
    if (!rekey || !membership || spi != rekey->spi) {
        ++counters.rekeys_forged;
        return;
    }
    if (m.header.message_id <= rekey->last_message_id) {
        ++counters.rekeys_replayed;  // replayed or out of order: Message IDs only increase
        return;
    }
    result<std::vector<payload>> inner = open_message(m, wire, rekey->kek.view());
    if (!inner) {
        handle_unopenable_rekey(m, now);
        return;
    }
    if (!rekey_signature_ok(m, *inner)) {
        ++counters.rekeys_forged;
        return;
    }
    const auto* kd = find_payload<kd_payload>(*inner, payload_type::kd);
    if (key_path && kd != nullptr && find_payload<gsa_payload>(*inner, payload_type::gsa) == nullptr) {
        const uint32_t missed = m.header.message_id - rekey->last_message_id - 1;
        rekey->last_message_id = m.header.message_id;
        counters.rekeys_missed += missed;
        handle_key_tree_part(*kd, now);
        if (missed != 0 && config.reregister_on_gap && phase == member_state::registered) {
            recover(now);
        }
        return;
    }
    result<group_membership> keys = accept_keys(*inner, rekey->kek.view().first(kek_key_size), kwk_id_kek);
    if (!keys) {
        ++counters.rekeys_forged;
        return;
    }
    const uint32_t missed = m.header.message_id - rekey->last_message_id - 1;
    rekey->last_message_id = m.header.message_id;
    ++counters.rekeys_accepted;
    counters.rekeys_missed += missed;
    tek_installed = now;
    // Newest TEK first; keep the ones before it for the activation/deactivation overlap. Two
    // older ones, not one: a member whose loop stalled through two rekeys applies both at once
    // and must still hold the TEK it was sending under, which the others open, until the
    // newest is active (key_manager picks, by arrival time, what to send and open).
    std::vector<tek> teks = std::move(keys->teks);
    for (tek& t : membership->teks) {
        if (teks.size() == max_held_teks) {
            break;
        }
        teks.push_back(std::move(t));
    }
    membership->teks = std::move(teks);
    if (missed != 0 && config.reregister_on_gap && phase == member_state::registered) {
        recover(now);  // the rekeys we missed may have carried more than the TEK
    }
}

void group_member::impl::handle_key_tree_part(const kd_payload& kd, clock::time_point now)
{
    const attribute* head = kd.bags.size() == 1 && kd.bags.front().type == key_bag_type::member &&
                                    !kd.bags.front().attributes.empty()
                                ? &kd.bags.front().attributes.front()
                                : nullptr;
    wire_reader r(head ? byte_view(head->value) : byte_view());
    auto epoch = r.u32();
    auto index = r.u16();
    auto count = r.u16();
    if (head == nullptr || head->type != lkh_part_attribute || !epoch || !index || !count || *index >= *count) {
        ++counters.rekeys_forged;  // signed by the GCKS but not a membership rekey we understand
        return;
    }
    if (!collecting || collecting->epoch != *epoch || collecting->count != *count) {
        collecting = lkh_parts{*epoch, *count, {}};
    }
    const payload p{payload_type::kd, false, kd};
    bytes encoded;
    encode_payload_chain(encoded, std::span<const payload>(&p, 1));
    collecting->parts[*index] = std::move(encoded);
    ++counters.rekeys_accepted;
    if (collecting->parts.size() < collecting->count) {
        return;
    }
    std::vector<bytes> parts;
    for (auto& [i, part] : collecting->parts) {
        parts.push_back(std::move(part));
    }
    collecting.reset();
    result<lkh_rekey_index> index_of_keys = decode_lkh_rekey(parts);
    result<void> applied = index_of_keys ? key_path->apply(*index_of_keys) : result<void>(index_of_keys.err());
    if (!applied) {
        // Evicted, or a missed membership rekey: the path keys are stale. Re-register (refused
        // if we were removed from the group, which then drops the keys).
        ++counters.key_tree_failures;
        last_error = "membership rekey: " + applied.err().detail;
        if (config.reregister_on_gap && phase == member_state::registered) {
            recover(now);
        }
        return;
    }
    ++counters.key_tree_rekeys;
    rekey->kek = lkh_kek(key_path->group_key());
}

void group_member::impl::handle_unopenable_rekey(const message& m, clock::time_point now)
{
    ++counters.rekeys_forged;
    // Not authenticated, so only a hint: a Message ID gap, or parts still missing, mean the KEK
    // moved on without us. A re-registration is authenticated; at most one runs at a time.
    const bool gap = m.header.message_id > rekey->last_message_id + 1;
    if (key_path && (gap || collecting) && config.reregister_on_gap && phase == member_state::registered) {
        collecting.reset();
        recover(now);
    }
}

void group_member::impl::join_rekey_address(const gsa_policy& kek)
{
    const attribute* where = find_attribute(kek.attributes, rekey_address_attribute);
    if (where == nullptr) {
        return;
    }
    wire_reader r(where->value);
    auto address = r.u32();
    auto port = r.u16();
    if (!address || !port || !r.at_end() || !udp_socket::is_multicast(*address)) {
        return;
    }
    const endpoint group{*address, *port};
    if (multicast && multicast->local() == group) {
        return;
    }
    const uint32_t interface = config.multicast_interface != 0 ? config.multicast_interface : config.local.address;
    result<udp_socket> s = udp_socket::open_multicast(group, interface);
    if (!s) {
        last_error = s.err().detail;  // no rekeys reach us: the TEK lifetime makes us re-register
        return;
    }
    multicast = std::move(*s);
}

void group_member::impl::write_keylog() const
{
    if (config.keylog_path.empty()) {
        return;
    }
    std::ofstream out(config.keylog_path, std::ios::app);
    out << sa->wireshark_keylog_record() << '\n';
}

result<std::unique_ptr<group_member>> group_member::create(member_config config)
{
    if (!is_supported(config.group)) {
        return error{errc::config_bad_value, "key exchange method must be 19 or 31"};
    }
    if (config.identity.empty() || (config.psk.empty() && config.certificates.certificate_file.empty())) {
        return error{errc::config_missing_key, "group member needs an identity and a pre-shared key or a certificate"};
    }
    result<certificate_auth> certs = certificate_auth::load(config.certificates, config.identity);
    if (!certs) {
        return certs.err();
    }
    result<udp_socket> socket = udp_socket::open(config.local);
    if (!socket) {
        return socket.err();
    }
    std::optional<verify_key> gcks_key;
    if (!config.gcks_public_key.empty()) {
        result<verify_key> k = verify_key::parse(config.gcks_public_key);
        if (!k) {
            return error{errc::config_bad_value, "gcks_public_key: " + k.err().detail};
        }
        gcks_key = std::move(*k);
    }
    auto s = std::make_unique<impl>(std::move(config), std::move(*socket));
    s->gcks_key = std::move(gcks_key);
    s->certs = std::move(*certs);
    return std::unique_ptr<group_member>(new group_member(std::move(s)));
}

group_member::group_member(std::unique_ptr<impl> s) : _s(std::move(s)) {}
group_member::~group_member() = default;

void group_member::start(clock::time_point now)
{
    _s->start(now);
}

void group_member::tick(clock::time_point now)
{
    _s->last_progress = now;
    while (std::optional<received_datagram> dg = _s->socket.receive()) {
        _s->handle(*dg, now);
    }
    while (std::optional<received_datagram> dg = _s->multicast ? _s->multicast->receive() : std::nullopt) {
        _s->handle(*dg, now);
    }
    _s->retransmit_if_due(now);
    _s->check_recovery(now);
}

member_state group_member::state() const
{
    return _s->phase;
}

const group_membership* group_member::membership() const
{
    return _s->membership ? &*_s->membership : nullptr;
}

std::optional<notify_type> group_member::rejection() const
{
    return _s->rejection;
}

const std::string& group_member::last_error() const
{
    return _s->last_error;
}

uint64_t group_member::transmissions() const
{
    return _s->transmissions;
}

const member_counters& group_member::counters() const
{
    return _s->counters;
}

const endpoint& group_member::key_server() const
{
    return _s->gcks();
}

const endpoint& group_member::local() const
{
    return _s->socket.local();
}

int group_member::fd() const
{
    return _s->socket.fd();
}

int group_member::rekey_fd() const
{
    return _s->multicast ? _s->multicast->fd() : -1;
}

std::optional<uint32_t> group_member::key_tree_epoch() const
{
    if (!_s->key_path) {
        return std::nullopt;
    }
    return _s->key_path->epoch();
}

} // namespace msecgw::gkm
