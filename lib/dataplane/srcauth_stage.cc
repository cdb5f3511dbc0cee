// Source authentication: construction of every worker's senders and verifiers (control core),
// and the helpers both directions share. The worker stages are in srcauth_out.cc / srcauth_in.cc.
#include "srcauth_stage.hh"

#include <algorithm>
#include <cstring>
#include <ctime>

namespace msecgw::dataplane {

namespace {

constexpr uint64_t ms = 1'000'000;

error key_error(const config::gateway_cfg& cfg, int line, const std::string& where, const error& e)
{
    return error{e.code, cfg.file + ":" + std::to_string(line) + ": " + where + ": " + e.detail};
}

result<std::unique_ptr<auth_sender>> make_sender(const config::gateway_cfg& cfg, const config::source_auth_cfg& b,
                                                 crypto::engine& e, uint16_t lane, uint64_t now_ns)
{
    const std::string where = b.where + ".signing_key";
    auto sig = srcauth::signer::from_pem_file(b.signing_key);
    if (!sig) {
        return key_error(cfg, b.signing_key_line, where, sig.err());
    }
    const uint32_t id = auth_sender_id(sig->key_id(), lane);
    auto s = std::unique_ptr<auth_sender>(new auth_sender{b.mode, std::move(sig.value()), {}, {}, {}, 0, 0, 0, 0, {}});
    switch (b.mode) {
    case config::source_auth_mode::tesla: {
        srcauth::tesla_params p;
        p.sender_id = id;
        p.interval_ns = uint64_t{b.interval_ms} * ms;
        p.t0_ns = now_ns - p.interval_ns; // interval 1 (the first that carries data) starts now
        p.disclosure_delay = b.disclosure_delay;
        p.chain_length = b.chain_length;
        auto t = srcauth::tesla_sender::create(e, p);
        if (!t) {
            return key_error(cfg, b.line, b.where, t.err());
        }
        s->tesla.emplace(std::move(t.value()));
        s->bootstrap_period_ns = uint64_t{b.bootstrap_period_ms} * ms;
        break;
    }
    case config::source_auth_mode::manifest: {
        auto m = srcauth::manifest_sender::create({id, b.manifest_packets, uint64_t{b.manifest_max_age_ms} * ms});
        if (!m) {
            return key_error(cfg, b.line, b.where, m.err());
        }
        s->manifest.emplace(std::move(m.value()));
        s->sign_on_worker = b.sign_on_worker;
        break;
    }
    case config::source_auth_mode::sign: {
        auto own = srcauth::signer::from_pem_file(b.signing_key); // sign_sender keeps its own
        if (!own) {
            return key_error(cfg, b.signing_key_line, where, own.err());
        }
        s->sign.emplace(id, std::move(own.value()));
        break;
    }
    }
    return s;
}

/// Hold timeout when the block names none: TESLA waits for the disclosure (d + 2 intervals plus
/// the clock bound), a manifest for four manifest periods.
uint64_t hold_timeout_ns(const config::source_auth_cfg& b)
{
    if (b.hold_timeout_ms != 0) {
        return uint64_t{b.hold_timeout_ms} * ms;
    }
    if (b.mode == config::source_auth_mode::tesla) {
        return (uint64_t{b.disclosure_delay} + 2) * b.interval_ms * ms + uint64_t{b.clock_offset_bound_ms} * ms;
    }
    return 4 * uint64_t{b.manifest_max_age_ms} * ms + 10 * ms;
}

result<std::unique_ptr<auth_verifier>> make_verifier(const config::gateway_cfg& cfg, const config::source_auth_cfg& b)
{
    auto v = std::make_unique<auth_verifier>();
    v->mode = b.mode;
    switch (b.mode) {
    case config::source_auth_mode::tesla: v->tesla.emplace(); break;
    case config::source_auth_mode::manifest: v->manifest.emplace(); break;
    case config::source_auth_mode::sign: v->sign.emplace(); break;
    }
    const srcauth::tesla_receiver_policy tp{uint64_t{b.clock_offset_bound_ms} * ms, b.hold_packets, hold_timeout_ns(b),
                                            4096};
    srcauth::manifest_receiver_policy mp;
    mp.hold_capacity = b.hold_packets;
    mp.hold_timeout_ns = hold_timeout_ns(b);
    mp.best_effort = b.best_effort;
    mp.max_digests = std::max<uint32_t>(mp.max_digests, b.manifest_packets);
    for (std::size_t i = 0; i < b.trust.size(); ++i) {
        const config::trust_cfg& t = b.trust[i];
        const std::string where = b.where + ".trust[" + std::to_string(i) + "].public_key";
        auto probe = srcauth::sig_verifier::from_pem_file(t.public_key);
        if (!probe) {
            return key_error(cfg, t.line, where, probe.err());
        }
        v->trust.push_back({t.sender, probe->key_id()});
        for (uint16_t lane = 0; lane < max_auth_lanes; ++lane) {
            auto anchor = srcauth::sig_verifier::from_pem_file(t.public_key);
            if (!anchor) {
                return key_error(cfg, t.line, where, anchor.err());
            }
            const uint32_t id = auth_sender_id(probe->key_id(), lane);
            if (v->tesla) {
                v->tesla->add_sender(id, std::move(anchor.value()), tp);
            } else if (v->manifest) {
                v->manifest->add_sender(id, std::move(anchor.value()), mp);
            } else {
                v->sign->add_sender(id, std::move(anchor.value()));
            }
        }
    }
    return v;
}

bool in_prefix(const config::ip_prefix& p, const uint8_t* addr, uint8_t family)
{
    if (p.is_any()) {
        return true;
    }
    if ((p.family == config::ip_family::v4) != (family == 4)) {
        return false;
    }
    const unsigned full = p.length / 8, rest = p.length % 8;
    if (std::memcmp(p.addr.data(), addr, full) != 0) {
        return false;
    }
    const auto mask = static_cast<uint8_t>(0xff00 >> rest);
    return rest == 0 || ((p.addr[full] ^ addr[full]) & mask) == 0;
}

} // namespace

uint16_t auth_sender::header_len() const
{
    switch (mode) {
    case config::source_auth_mode::tesla: return srcauth::tesla_sender::header_len;
    case config::source_auth_mode::manifest: return srcauth::manifest_sender::header_len;
    case config::source_auth_mode::sign: return srcauth::sign_sender::header_len;
    }
    return 0;
}

bool auth_verifier::binds(uint32_t sender, const uint8_t* src, uint8_t family) const
{
    for (const auth_trust& t : trust) {
        if (t.key_id == sender >> 8 && (sender & 0xff) < max_auth_lanes && in_prefix(t.sender, src, family)) {
            return true;
        }
    }
    return false;
}

result<std::unique_ptr<srcauth_lcore>> make_srcauth_lcore(const config::gateway_cfg& cfg, crypto::engine& e,
                                                          uint16_t lane, uint64_t now_ns)
{
    auto a = std::make_unique<srcauth_lcore>();
    a->senders.resize(cfg.source_auth.size());
    a->verifiers.resize(cfg.source_auth.size());
    for (const auto& b : cfg.source_auth) {
        if (!b->signing_key.empty()) {
            if (lane >= max_auth_lanes) {
                return error{errc::unsupported, cfg.file + ":" + std::to_string(b->line) + ": " + b->where +
                                                    ": a tagging gateway has at most " +
                                                    std::to_string(max_auth_lanes) + " worker lcores"};
            }
            auto s = make_sender(cfg, *b, e, lane, now_ns);
            if (!s) {
                return s.err();
            }
            a->senders[b->slot] = std::move(s.value());
        }
        if (!b->trust.empty()) {
            auto v = make_verifier(cfg, *b);
            if (!v) {
                return v.err();
            }
            a->verifiers[b->slot] = std::move(v.value());
        }
    }
    return a;
}

drop_reason to_drop_reason(srcauth::reason r)
{
    using srcauth::reason;
    switch (r) {
    case reason::none:
    case reason::malformed: return drop_reason::srcauth_malformed;
    case reason::unknown_sender: return drop_reason::srcauth_unknown_sender;
    case reason::wrong_mode: return drop_reason::srcauth_wrong_mode;
    case reason::not_bootstrapped: return drop_reason::srcauth_not_bootstrapped;
    case reason::forged: return drop_reason::srcauth_forged;
    case reason::unsafe: return drop_reason::srcauth_unsafe;
    case reason::bad_interval: return drop_reason::srcauth_bad_interval;
    case reason::overflow: return drop_reason::srcauth_hold_overflow;
    case reason::timeout: return drop_reason::srcauth_timeout;
    case reason::replayed_manifest: return drop_reason::srcauth_replayed_manifest;
    case reason::replayed_packet: return drop_reason::srcauth_replayed_packet;
    case reason::bad_signature: return drop_reason::srcauth_bad_signature;
    case reason::bad_disclosure: return drop_reason::srcauth_bad_disclosure;
    case reason::stale_control: return drop_reason::srcauth_stale_control;
    case reason::chain_replaced: return drop_reason::srcauth_chain_replaced;
    case reason::count_: break;
    }
    return drop_reason::srcauth_malformed;
}

uint64_t realtime_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

} // namespace msecgw::dataplane
