#include "sa_manager.hh"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "common/log.hh"
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <system_error>

namespace msecgw::control {

namespace {

bool same_sa(const config::sa_cfg& a, const config::sa_cfg& b)
{
    const auto& ka = a.key.bytes();
    const auto& kb = b.key.bytes();
    // The Sender-ID is part of the IV layout: another one is another IV space, so another SA object.
    return a.spi == b.spi && a.dir == b.dir && a.aead == b.aead && a.replay_window == b.replay_window &&
           a.dst == b.dst && a.src == b.src && a.sender_id == b.sender_id && a.sender_id_bits == b.sender_id_bits &&
           sa::auth_slot_of(a) == sa::auth_slot_of(b) && ka.size() == kb.size() && CRYPTO_memcmp(ka.data(), kb.data(), ka.size()) == 0;
}

/// "key-<fingerprint>": the IV counters belong to the key, not to the SA's name or SPI: renaming
/// an SA or moving a key to another SPI must continue its counters (invariant 1). The fingerprint
/// is a domain-separated SHA-256 of the keying material, truncated: it identifies the key without
/// revealing it.
std::string key_id(const config::sa_cfg& c)
{
    static constexpr char label[] = "msecgw IV store v1";
    std::vector<uint8_t> in(label, label + sizeof label - 1);
    in.insert(in.end(), c.key.bytes().begin(), c.key.bytes().end());
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(in.data(), in.size(), digest);
    OPENSSL_cleanse(in.data(), in.size());
    std::string id = "key-";
    char b[3];
    for (int i = 0; i < 12; ++i) {
        std::snprintf(b, sizeof b, "%02x", digest[i]);
        id += b;
    }
    return id;
}

/// Suffix of a store id for an IV layout: none without a Sender-ID (the name stores had before
/// Sender-IDs existed, so their counters go on), "-sid<bits>-<sender_id>" with one.
std::string layout_suffix(uint8_t bits, uint32_t sender_id)
{
    return bits == 0 ? std::string() : "-sid" + std::to_string(bits) + "-" + std::to_string(sender_id);
}

/// Counters belong to (key, Sender-ID): IVs of two Sender-IDs of one width differ in their top
/// bits, so each Sender-ID has its own counters (store id "key-<fingerprint>-sid8-5"); a new one starts
/// after the highest counter of the others (inspect_key_stores).
std::string store_id(const config::sa_cfg& c)
{
    return key_id(c) + layout_suffix(c.sender_id_bits, c.sender_id);
}

/// Sender-ID width in a store file name "iv-<key_id><layout_suffix>.store" of key `key`, or -1
/// when the file is not such a store.
int stored_width(const std::string& file, const std::string& key)
{
    const std::string head = "iv-" + key, tail = ".store";
    if (file.size() < head.size() + tail.size() || file.compare(0, head.size(), head) != 0 ||
        file.compare(file.size() - tail.size(), tail.size(), tail) != 0) {
        return -1;
    }
    const std::string layout = file.substr(head.size(), file.size() - head.size() - tail.size());
    if (layout.empty()) {
        return 0;
    }
    unsigned bits = 0, id = 0;
    char end = 0;
    const bool ok = std::sscanf(layout.c_str(), "-sid%u-%u%c", &bits, &id, &end) == 2 &&
                    layout == layout_suffix(static_cast<uint8_t>(bits), id);
    return ok ? static_cast<int>(bits) : -1;
}

/// Two layouts of different Sender-ID widths can map to one IV (with 0 bits, lane 1 is IV
/// 1 << 58; with 8 bits that is Sender-ID 4, lane 0): a key whose counters were kept under
/// one width must not be used with another. Names the store in the way, if any.
/// Checks the other IV stores of this SA's key in state_dir (other Sender-IDs) and returns the
/// highest counter any of them reserved (0 without any). A store of another Sender-ID width is an
/// error: IVs of two layouts can coincide. The peak is where a new Sender-ID's counters start:
/// the ESP sequence number is counter + 1, and receivers keep one replay window per (SA, source),
/// not per Sender-ID, so a gateway that restarts with a new Sender-ID on the same key (a group
/// member re-registering) must not begin again at sequence number 1.
result<uint64_t> inspect_key_stores(const std::string& state_dir, const config::sa_cfg& c)
{
    std::error_code ec;
    std::filesystem::directory_iterator it(state_dir, ec), end;
    if (ec == std::errc::no_such_file_or_directory) {
        return uint64_t{0}; // created by the store's open: it holds no counters yet
    }
    const std::string key = key_id(c);
    const std::string own = "iv-" + store_id(c) + ".store";
    uint64_t peak = 0;
    for (; !ec && it != end; it.increment(ec)) {
        const std::string file = it->path().filename().string();
        const int bits = stored_width(file, key);
        if (bits < 0 || file == own) {
            continue;
        }
        if (bits != c.sender_id_bits) {
            return error{errc::config_bad_value,
                         "SA " + c.name + ": its key already has IV counters for Sender-ID width " +
                             std::to_string(bits) + " (" + state_dir + "/" + file + "), this SA has width " +
                             std::to_string(c.sender_id_bits) + ": IVs of the two layouts can coincide; use a new key"};
        }
        const std::string id = file.substr(3, file.size() - 3 - 6); // "iv-" ID ".store"
        auto top = store::iv_store::peak(state_dir, id);
        if (!top) {
            return error{top.err().code, "SA " + c.name + ": " + top.err().detail};
        }
        peak = std::max(peak, *top);
    }
    if (ec) {
        return error{errc::io, "SA " + c.name + ": " + state_dir + ": cannot list IV stores: " + ec.message()};
    }
    return peak;
}

result<std::vector<uint32_t>> rule_sas(const policy::table& t, const std::map<std::string, uint32_t>& index)
{
    std::vector<uint32_t> out(t.size() + 1, dataplane::no_sa);
    for (policy::rule_id id = 1; id <= t.size(); ++id) {
        const auto& r = t.rule(id);
        if (r.action == config::policy_action::protect && !r.sa.empty()) { // empty: a group without keys yet
            out[id] = index.at(r.sa);
        }
    }
    return out;
}

} // namespace

result<std::unique_ptr<sa_manager>> sa_manager::create(std::string state_dir, uint16_t workers, uint64_t block)
{
    std::unique_ptr<sa_manager> m(new sa_manager());
    m->_state_dir = std::move(state_dir);
    m->_workers = std::min<uint16_t>(std::max<uint16_t>(workers, 1), sa::max_workers);
    m->_block = block;
    auto e = crypto::engine::create();
    if (!e) {
        return e.err();
    }
    m->_engine = std::make_unique<crypto::engine>(std::move(e.value()));
    const size_t sz = rte_rcu_qsbr_get_memsize(m->_workers);
    m->_qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("msecgw_qsbr", sz, RTE_CACHE_LINE_SIZE));
    if (m->_qsbr == nullptr || rte_rcu_qsbr_init(m->_qsbr, m->_workers) != 0) {
        return error{errc::dpdk, "cannot set up RCU (QSBR) for " + std::to_string(m->_workers) + " workers"};
    }
    for (uint16_t w = 0; w < m->_workers; ++w) {
        rte_rcu_qsbr_thread_register(m->_qsbr, w);
    }
    return m;
}

sa_manager::~sa_manager()
{
    _state.store(nullptr);
    _current.reset();
    rte_free(_qsbr);
}

result<void> sa_manager::fill_lane(out_entry& e, uint16_t lane, bool current)
{
    uint64_t want = _block;
    if (e.cfg.hard.packets != 0) { // hand out no more counters than the hard packet lifetime
        want = std::min(want, e.cfg.hard.packets - e.handed_out);
        if (want == 0) {
            e.sa->budget_spent.store(1, std::memory_order_relaxed);
            return {};
        }
    }
    auto blk = e.store->reserve(lane, want);
    if (!blk) {
        return blk.err();
    }
    e.handed_out += blk->count;
    sa::out_lane& l = e.sa->lanes[lane];
    if (current) {
        l.ctr = blk->start;
        l.end = blk->start + blk->count;
    } else {
        l.next_start.store(blk->start, std::memory_order_relaxed);
        l.next_end.store(blk->start + blk->count, std::memory_order_release);
    }
    return {};
}

result<std::shared_ptr<sa::out_sa>> sa_manager::out_sa_for(const config::sa_cfg& c,
                                                           std::map<std::string, out_entry>& next)
{
    const auto it = _out.find(c.name);
    if (it != _out.end() && same_sa(it->second.cfg, c)) {
        auto sa = it->second.sa;
        it->second.cfg.soft = c.soft; // lifetimes may change in place
        it->second.cfg.hard = c.hard;
        next[c.name] = std::move(it->second);
        _out.erase(it);
        return sa;
    }
    auto sa = sa::make_out_sa(c, *_engine, _next_uid++, c.sender_id, c.sender_id_bits);
    if (!sa) {
        return sa.err();
    }
    std::unique_ptr<store::iv_store> counters;
    const std::string id = store_id(c);
    for (auto& [n, old] : _out) {
        if (old.store && store_id(old.cfg) == id) {
            counters = std::move(old.store); // same key (renamed, new SPI…): one allocator, counters go on
            break;
        }
    }
    if (!counters) {
        auto first = inspect_key_stores(_state_dir, c);
        if (!first) {
            return first.err();
        }
        auto st = store::iv_store::open(_state_dir, id, sa::max_workers, (*sa)->counter_limit(), *first);
        if (!st) {
            return error{st.err().code, "SA " + c.name + ": IV counter store: " + st.err().detail};
        }
        counters = std::make_unique<store::iv_store>(std::move(st.value()));
    }
    out_entry e{*sa, std::move(counters), c, 0, std::chrono::steady_clock::now(), false};
    for (uint16_t lane = 0; lane < _workers; ++lane) {
        for (bool current : {true, false}) {
            if (auto r = fill_lane(e, lane, current); !r) {
                return error{r.err().code, "SA " + c.name + ": " + r.err().detail};
            }
        }
    }
    next[c.name] = std::move(e);
    return sa.value();
}

result<std::shared_ptr<sa::in_sa>> sa_manager::in_sa_for(const config::sa_cfg& c, std::map<std::string, in_entry>& next)
{
    if (auto it = _in.find(c.name); it != _in.end() && same_sa(it->second.cfg, c)) {
        auto sa = it->second.sa;
        it->second.cfg.soft = c.soft;
        it->second.cfg.hard = c.hard;
        next[c.name] = std::move(it->second);
        _in.erase(it);
        return sa;
    }
    auto sa = sa::make_in_sa(c, *_engine, _next_uid++);
    if (!sa) {
        return sa.err();
    }
    next[c.name] = in_entry{*sa, c, std::chrono::steady_clock::now(), false};
    return sa.value();
}

void sa_manager::rollback(std::map<std::string, out_entry>& next_out, std::map<std::string, in_entry>& next_in)
{
    for (auto& [n, e] : next_out) { // give back entries, and any counter store handed over
        for (auto& [m, old] : _out) {
            if (!old.store && e.store && store_id(old.cfg) == store_id(e.cfg)) {
                old.store = std::move(e.store);
            }
        }
        _out.try_emplace(n, std::move(e)); // reused entries go back; new ones (already emptied) are dropped
    }
    for (auto& [n, e] : next_in) {
        _in.try_emplace(n, std::move(e));
    }
}

namespace {

/// One region's tables: its policies (rule ids are per table) and the SAD of its inbound SAs;
/// SA indexes are into the snapshot's shared SA lists.
result<dataplane::region_tables> build_region(const config::gateway_cfg& cfg, uint16_t region,
                                              const std::map<std::string, uint32_t>& out_index,
                                              const std::map<std::string, uint32_t>& in_index,
                                              const std::vector<std::shared_ptr<sa::in_sa>>& in_sas,
                                              const std::string& gen)
{
    std::vector<config::policy_cfg> mine;
    for (const auto& p : cfg.policies) {
        if (p.region == region) {
            mine.push_back(p);
        }
    }
    const int socket = static_cast<int>(rte_socket_id());
    const std::string tag = gen + "r" + std::to_string(region);
    auto out = policy::table::build(mine, config::direction::out, "out" + tag, socket);
    auto in = policy::table::build(mine, config::direction::in, "in" + tag, socket);
    if (!out || !in) {
        return out ? in.err() : out.err();
    }
    dataplane::region_tables t;
    t.out_policies = std::move(out.value());
    t.in_policies = std::move(in.value());
    t.out_rule_sa = rule_sas(*t.out_policies, out_index).value();
    t.in_rule_sa = rule_sas(*t.in_policies, in_index).value();
    t.in_sa_rules.resize(in_sas.size());
    for (policy::rule_id id = 1; id < t.in_rule_sa.size(); ++id) {
        if (t.in_rule_sa[id] != dataplane::no_sa) {
            t.in_sa_rules[t.in_rule_sa[id]].push_back(id);
        }
    }
    std::vector<sa::sad_entry> sad;
    for (const auto& c : cfg.sas) {
        if (c.dir == config::direction::in && c.region == region) {
            const uint32_t idx = in_index.at(c.name);
            sad.push_back({c.spi, in_sas[idx]->dst, in_sas[idx]->src, idx});
        }
    }
    t.sad = sa::sad(std::move(sad));
    return t;
}

} // namespace

result<void> sa_manager::apply(const config::gateway_cfg& cfg)
{
    auto st = std::make_unique<dataplane::dp_state>();
    static uint32_t generation = 0;
    const std::string gen = std::to_string(generation++);
    std::map<std::string, out_entry> next_out;
    std::map<std::string, in_entry> next_in;
    std::map<std::string, uint32_t> out_index, in_index;
    for (const auto& c : cfg.sas) {
        if (c.dir == config::direction::out) {
            auto sa = out_sa_for(c, next_out);
            if (!sa) {
                rollback(next_out, next_in);
                return sa.err();
            }
            out_index[c.name] = static_cast<uint32_t>(st->out_sas.size());
            st->out_sas.push_back(*sa);
        } else {
            auto sa = in_sa_for(c, next_in);
            if (!sa) {
                rollback(next_out, next_in);
                return sa.err();
            }
            in_index[c.name] = static_cast<uint32_t>(st->in_sas.size());
            st->in_sas.push_back(*sa);
        }
    }
    for (uint16_t r = 0; r < cfg.region_count(); ++r) {
        auto t = build_region(cfg, r, out_index, in_index, st->in_sas, gen);
        if (!t) {
            rollback(next_out, next_in);
            return t.err();
        }
        st->regions.push_back(std::move(t.value()));
    }
    _out = std::move(next_out); // SAs left out of the new config are retired with the old snapshot
    _in = std::move(next_in);
    publish(std::move(st));
    return {};
}

void sa_manager::publish(std::unique_ptr<dataplane::dp_state> next)
{
    _state.store(next.get(), std::memory_order_release);
    std::unique_ptr<dataplane::dp_state> old = std::move(_current);
    _current = std::move(next);
    if (old) {
        rte_rcu_qsbr_synchronize(_qsbr, RTE_QSBR_THRID_INVALID); // every worker is past the old one
    }
}

template <class Entry>
void sa_manager::check_lifetime(const std::string& name, Entry& e, uint64_t pkts, uint64_t bytes)
{
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - e.born);
    const auto past = [&](const config::sa_lifetime& l) {
        return (l.packets != 0 && pkts >= l.packets) || (l.bytes != 0 && bytes >= l.bytes) ||
               (l.seconds != 0 && static_cast<uint64_t>(age.count()) >= l.seconds);
    };
    if (!e.soft_logged && past(e.cfg.soft)) {
        e.soft_logged = true;
        MSECGW_LOG(WARNING, control, "SA %s passed its soft lifetime: rekey it", name.c_str());
    }
    const config::sa_lifetime& h = e.cfg.hard;
    // Packet limits of outbound SAs are exact through the IV budget (fill_lane).
    const bool hard = (h.bytes != 0 && bytes >= h.bytes) || (h.seconds != 0 && static_cast<uint64_t>(age.count()) >= h.seconds) ||
                      (e.cfg.dir == config::direction::in && h.packets != 0 && pkts >= h.packets);
    if (hard && !e.sa->expired.exchange(1)) {
        MSECGW_LOG(WARNING, control, "SA %s passed its hard lifetime: stopped", name.c_str());
    }
}

void sa_manager::tick()
{
    for (auto& [name, e] : _in) {
        uint64_t pkts = 0, bytes = 0;
        for (uint16_t lane = 0; lane < _workers; ++lane) {
            pkts += e.sa->lanes[lane].pkts;
            bytes += e.sa->lanes[lane].bytes;
        }
        check_lifetime(name, e, pkts, bytes);
    }
    for (auto& [name, e] : _out) {
        if (!e.store) {
            continue; // handed to a replacement during a failed apply
        }
        uint64_t pkts = 0, bytes = 0;
        for (uint16_t lane = 0; lane < _workers; ++lane) {
            pkts += e.sa->lanes[lane].pkts;
            bytes += e.sa->lanes[lane].bytes;
        }
        check_lifetime(name, e, pkts, bytes);
        for (uint16_t lane = 0; lane < _workers; ++lane) {
            sa::out_lane& l = e.sa->lanes[lane];
            if (l.next_end.load(std::memory_order_acquire) != 0 || l.exhausted.load(std::memory_order_relaxed) ||
                e.sa->budget_spent.load(std::memory_order_relaxed)) {
                continue;
            }
            if (auto r = fill_lane(e, lane, false); !r) {
                if (e.store->remaining(lane) == 0) {
                    l.exhausted.store(1, std::memory_order_relaxed);
                } else {
                    e.sa->stopped.store(1, std::memory_order_relaxed);
                    MSECGW_LOG(ERR, control, "SA %s stopped: %s", name.c_str(), r.err().detail.c_str());
                }
            }
        }
    }
}

namespace {

/// A selector in Wireshark's esp_sa address syntax: IPv4 octets or IPv6 16-bit groups, each
/// either its value or `*`. A prefix that does not end on an octet (group) is widened to it.
std::string wireshark_address(const std::optional<config::ip_prefix>& p)
{
    if (!p || p->is_any() || p->length == 0) {
        return "*";
    }
    if (p->family == config::ip_family::v6) {
        std::string out;
        char group[8];
        for (int g = 0; g < 8; ++g) {
            std::snprintf(group, sizeof group, "%x", p->addr[2 * g] << 8 | p->addr[2 * g + 1]);
            out += g ? ":" : "";
            out += g < p->length / 16 ? group : "*";
        }
        return out;
    }
    std::string out;
    for (int octet = 0; octet < 4; ++octet) {
        out += octet ? "." : "";
        out += octet < p->length / 8 ? std::to_string(p->addr[octet]) : "*";
    }
    return out;
}

/// Selectors pin the family; otherwise both.
std::vector<const char*> families(const config::sa_cfg& c)
{
    for (const auto& p : {c.dst, c.src}) {
        if (p && !p->is_any()) {
            return {p->family == config::ip_family::v4 ? "IPv4" : "IPv6"};
        }
    }
    return {"IPv4", "IPv6"};
}

int specificity(const config::sa_cfg& c)
{
    const int dst = c.dst && !c.dst->is_any() ? 1 : 0;
    const int src = c.src && !c.src->is_any() ? 1 : 0;
    return (dst + src) * 1000 + (dst ? c.dst->length : 0) + (src ? c.src->length : 0);
}

} // namespace

std::vector<std::string> sa_manager::keylog_lines(const config::gateway_cfg& cfg) const
{
    // Wireshark takes the first matching line: most specific SAs first, as the SAD does.
    std::vector<const config::sa_cfg*> order;
    for (const auto& c : cfg.sas) {
        order.push_back(&c);
    }
    std::stable_sort(order.begin(), order.end(),
                     [](const auto* a, const auto* b) { return specificity(*a) > specificity(*b); });
    std::vector<std::string> lines;
    for (const config::sa_cfg* c : order) {
        std::string hex;
        char b[3];
        for (uint8_t v : c->key.bytes()) {
            std::snprintf(b, sizeof b, "%02x", v);
            hex += b;
        }
        char spi[16];
        std::snprintf(spi, sizeof spi, "0x%08x", c->spi);
        for (const char* proto : families(*c)) {
            lines.push_back(std::string("\"") + proto + "\",\"" + wireshark_address(c->src) + "\",\"" +
                            wireshark_address(c->dst) + "\",\"" + spi +
                            "\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x" + hex + "\",\"NULL\",\"\"");
        }
        OPENSSL_cleanse(hex.data(), hex.size());
    }
    return lines;
}

} // namespace msecgw::control
