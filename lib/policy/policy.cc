#include "policy.hh"

#include <rte_acl.h>
#include <rte_byteorder.h>

#include <array>
#include <atomic>
#include <cstring>

#include "acl_keys.hh"

namespace msecgw::policy {

using config::ip_family;
using detail::acl_key_v4;
using detail::acl_key_v6;

namespace {

// Fields: proto, address words, sport, dport, vlan, and a wildcard filling vlan's 4-byte group.
constexpr uint8_t v4_fields = 7;
constexpr uint8_t v6_fields = 13;

rte_acl_field_def field(uint8_t type, uint8_t size, uint8_t index, uint8_t input, std::size_t offset)
{
    return rte_acl_field_def{type, size, index, input, static_cast<uint32_t>(offset)};
}

/// Field layout shared by both families: proto first, then addresses (4-byte words), ports, VLAN.
rte_acl_config acl_config(ip_family fam)
{
    rte_acl_config cfg{};
    cfg.num_categories = 1;
    const uint8_t words = fam == ip_family::v4 ? 1 : 4;
    const std::size_t src_off = offsetof(acl_key_v4, src);
    uint8_t f = 0;
    cfg.defs[f] = field(RTE_ACL_FIELD_TYPE_BITMASK, 1, f, 0, offsetof(acl_key_v4, proto));
    ++f;
    for (uint8_t w = 0; w < 2 * words; ++w, ++f) {
        cfg.defs[f] = field(RTE_ACL_FIELD_TYPE_MASK, 4, f, f, src_off + 4u * w);
    }
    const std::size_t ports_off = src_off + 8u * words;
    cfg.defs[f] = field(RTE_ACL_FIELD_TYPE_RANGE, 2, f, f, ports_off);
    cfg.defs[f + 1] = field(RTE_ACL_FIELD_TYPE_RANGE, 2, f + 1, f, ports_off + 2);
    cfg.defs[f + 2] = field(RTE_ACL_FIELD_TYPE_RANGE, 2, f + 2, f + 1, ports_off + 4);
    cfg.defs[f + 3] = field(RTE_ACL_FIELD_TYPE_RANGE, 2, f + 3, f + 1, ports_off + 6);
    cfg.num_fields = f + 4;
    static_assert(offsetof(acl_key_v6, sport) == offsetof(acl_key_v4, src) + 32);
    static_assert(offsetof(acl_key_v4, sport) == offsetof(acl_key_v4, src) + 8);
    return cfg;
}

/// Mask of the prefix bits falling in 32-bit word `w`, as rte_acl's mask_range (bit count).
uint32_t word_bits(const config::ip_prefix& p, uint8_t w)
{
    const int bits = static_cast<int>(p.length) - 32 * w;
    return bits <= 0 ? 0u : bits >= 32 ? 32u : static_cast<uint32_t>(bits);
}

uint32_t word_value(const config::ip_prefix& p, uint8_t w)
{
    if (p.is_any()) {
        return 0;
    }
    uint32_t be;
    std::memcpy(&be, p.addr.data() + 4u * w, 4);
    return rte_be_to_cpu_32(be);
}

/// Writes one rule (header + fields) into `out` in rte_acl's rule layout.
void fill_rule(const config::policy_cfg& pol, uint32_t priority, uint32_t userdata, ip_family fam,
               rte_acl_rule* out)
{
    out->data.category_mask = 1;
    out->data.priority = static_cast<int32_t>(priority);
    out->data.userdata = userdata;
    rte_acl_field* fl = out->field;
    fl[0].value.u8 = pol.proto.value_or(0);
    fl[0].mask_range.u8 = pol.proto ? 0xff : 0;
    const uint8_t words = fam == ip_family::v4 ? 1 : 4;
    uint8_t f = 1;
    for (const config::ip_prefix* p : {&pol.src, &pol.dst}) {
        for (uint8_t w = 0; w < words; ++w, ++f) {
            fl[f].value.u32 = word_value(*p, w);
            fl[f].mask_range.u32 = word_bits(*p, w);
        }
    }
    fl[f].value.u16 = pol.sport.lo;
    fl[f].mask_range.u16 = pol.sport.hi;
    fl[f + 1].value.u16 = pol.dport.lo;
    fl[f + 1].mask_range.u16 = pol.dport.hi;
    fl[f + 2].value.u16 = pol.vlan.lo;
    fl[f + 2].mask_range.u16 = pol.vlan.hi;
    fl[f + 3].value.u16 = 0;
    fl[f + 3].mask_range.u16 = 0xffff;
}

void make_key_v4(const packet::pkt_meta& m, const uint8_t* frame, acl_key_v4& k)
{
    std::memset(&k, 0, sizeof(k));
    k.proto = m.proto;
    std::memcpy(&k.src, frame + m.l3_off + 12, 4);
    std::memcpy(&k.dst, frame + m.l3_off + 16, 4);
    k.sport = rte_cpu_to_be_16(m.sport);
    k.dport = rte_cpu_to_be_16(m.dport);
    k.vlan = rte_cpu_to_be_16(m.vlan);
}

void make_key_v6(const packet::pkt_meta& m, const uint8_t* frame, acl_key_v6& k)
{
    std::memset(&k, 0, sizeof(k));
    k.proto = m.proto;
    std::memcpy(k.src, frame + m.l3_off + 8, 16);
    std::memcpy(k.dst, frame + m.l3_off + 24, 16);
    k.sport = rte_cpu_to_be_16(m.sport);
    k.dport = rte_cpu_to_be_16(m.dport);
    k.vlan = rte_cpu_to_be_16(m.vlan);
}

} // namespace

bool same_selectors(const config::policy_cfg& a, const config::policy_cfg& b)
{
    return a.dir == b.dir && a.src == b.src && a.dst == b.dst && a.proto == b.proto && a.sport == b.sport &&
           a.dport == b.dport && a.vlan == b.vlan;
}

result<std::unique_ptr<table>> table::build(const std::vector<config::policy_cfg>& policies,
                                            config::direction dir, const std::string& tag,
                                            int socket_id)
{
    static std::atomic<uint64_t> next_id{1};
    std::unique_ptr<table> t(new table());
    t->_dir = dir;
    t->_id = next_id++;
    for (const auto& p : policies) {
        if (p.dir == dir) {
            t->_rules.push_back(p);
        }
    }
    for (ip_family fam : {ip_family::v4, ip_family::v6}) {
        const std::string name = "pol_" + tag + (fam == ip_family::v4 ? "_v4" : "_v6");
        if (auto r = t->build_family(fam, name, socket_id); !r) {
            return r.err();
        }
    }
    return t;
}

result<void> table::build_family(ip_family fam, const std::string& name, int socket_id)
{
    const uint8_t nfields = fam == ip_family::v4 ? v4_fields : v6_fields;
    const std::size_t rule_size = RTE_ACL_RULE_SZ(nfields);
    std::vector<uint8_t> rules;
    uint32_t count = 0;
    const auto total = static_cast<uint32_t>(_rules.size());
    for (uint32_t i = 0; i < total; ++i) {
        if (!_rules[i].applies_to(fam)) {
            continue;
        }
        rules.resize(rule_size * (count + 1));
        auto* r = reinterpret_cast<rte_acl_rule*>(rules.data() + rule_size * count);
        fill_rule(_rules[i], total - i, i + 1, fam, r);
        ++count;
    }
    if (count == 0) {
        return {};
    }
    rte_acl_param prm{};
    prm.name = name.c_str();
    prm.socket_id = socket_id;
    prm.rule_size = static_cast<uint32_t>(rule_size);
    prm.max_rule_num = count;
    rte_acl_ctx* ctx = rte_acl_create(&prm);
    if (ctx == nullptr) {
        return error{errc::dpdk, "rte_acl_create(" + name + ") failed"};
    }
    (fam == ip_family::v4 ? _v4 : _v6) = ctx;
    if (rte_acl_add_rules(ctx, reinterpret_cast<rte_acl_rule*>(rules.data()), count) != 0) {
        return error{errc::dpdk, "rte_acl_add_rules(" + name + ") failed"};
    }
    rte_acl_config cfg = acl_config(fam);
    if (int rc = rte_acl_build(ctx, &cfg); rc != 0) {
        return error{errc::dpdk, "rte_acl_build(" + name + ") failed: " + std::to_string(rc)};
    }
    return {};
}

table::~table()
{
    rte_acl_free(_v4);
    rte_acl_free(_v6);
}

void table::classify(const packet::pkt_meta* metas, const uint8_t* const* frames, uint16_t n,
                     rule_id* out) const
{
    std::array<acl_key_v4, max_burst> k4;
    std::array<acl_key_v6, max_burst> k6;
    std::array<const uint8_t*, max_burst> p4, p6;
    std::array<uint16_t, max_burst> i4, i6;
    std::array<uint32_t, max_burst> r4, r6;
    uint32_t n4 = 0, n6 = 0;
    for (uint16_t i = 0; i < n; ++i) {
        out[i] = no_match;
        if (metas[i].family == 4) {
            make_key_v4(metas[i], frames[i], k4[n4]);
            p4[n4] = reinterpret_cast<const uint8_t*>(&k4[n4]);
            i4[n4++] = i;
        } else {
            make_key_v6(metas[i], frames[i], k6[n6]);
            p6[n6] = reinterpret_cast<const uint8_t*>(&k6[n6]);
            i6[n6++] = i;
        }
    }
    if (n4 != 0 && _v4 != nullptr) {
        rte_acl_classify(_v4, p4.data(), r4.data(), n4, 1);
        for (uint32_t j = 0; j < n4; ++j) {
            out[i4[j]] = r4[j];
        }
    }
    if (n6 != 0 && _v6 != nullptr) {
        rte_acl_classify(_v6, p6.data(), r6.data(), n6, 1);
        for (uint32_t j = 0; j < n6; ++j) {
            out[i6[j]] = r6[j];
        }
    }
}

} // namespace msecgw::policy
