#include "dp_harness.hh"

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "common/byte_order.hh"
#include "config/config.hh"
#include "control/sa_manager.hh"
#include "crypto/crypto.hh"
#include "dataplane/burst.hh"
#include "dataplane/worker.hh"
#include "esp/esp.hh"
#include "frag/reasm.hh"
#include "packet/packet.hh"
#include "replay/replay.hh"

namespace msecgw::fuzz {

const std::string_view default_config = R"(state_dir: "@STATE@"
ports: [{port: 0, side: clear, mtu: 1500}, {port: 1, side: protected, mtu: 1500}]
sas:
  - {name: o4, dir: out, spi: 0x0000a001, aead: aes-128-gcm, key: "0x101112131415161718191a1b1c1d1e1fcafebabe"}
  - {name: i4, dir: in, spi: 0x0000a001, dst: 239.1.0.0/16, aead: aes-128-gcm, key: "0x101112131415161718191a1b1c1d1e1fcafebabe", replay_window: 1024}
  - {name: o6, dir: out, spi: 0x0000b001, aead: aes-256-gcm, key: "0x202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3fdeadbeef"}
  - {name: i6, dir: in, spi: 0x0000b001, dst: "ff3e::1:0/112", aead: aes-256-gcm, key: "0x202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3fdeadbeef", replay_window: 64}
  - {name: on, dir: out, spi: 0x0000c001, aead: aes-128-gcm, key: "0x404142434445464748494a4b4c4d4e4f01020304"}
  - {name: in, dir: in, spi: 0x0000c001, src: 10.2.0.0/16, aead: aes-128-gcm, key: "0x404142434445464748494a4b4c4d4e4f01020304", replay_window: 0}
policies:
  - {dir: out, dst: 239.1.0.0/16, action: protect, sa: o4}
  - {dir: out, dst: "ff3e::1:0/112", action: protect, sa: o6}
  - {dir: out, src: 10.2.0.0/16, dst: 239.2.0.0/16, action: protect, sa: on}
  - {dir: out, dst: 239.3.0.0/16, action: bypass}
  - {dir: out, dst: 239.4.0.0/16, action: discard}
  - {dir: in, dst: 239.1.0.0/16, proto: udp, dport: "5000-5999", action: protect, sa: i4}
  - {dir: in, dst: "ff3e::1:0/112", action: protect, sa: i6}
  - {dir: in, dst: 239.2.0.0/16, action: protect, sa: in}
  - {dir: in, dst: 239.3.0.0/16, action: bypass}
  - {dir: in, dst: 239.4.0.0/16, action: discard}
)";

namespace {

constexpr uint32_t replay_windows = 64; ///< small: a table is made per reset
constexpr uint32_t reasm_datagrams = 64;
constexpr uint16_t ring_size = 1024;

bool eal_up = false;

} // namespace

bool init_eal()
{
    if (eal_up) {
        return true;
    }
    std::string prefix = "--file-prefix=msecgw_fz_" + std::to_string(getpid());
    const char* argv[] = {"msecgw-fuzz", "--no-huge", "--no-pci", "-m", "256", "--no-shconf", "-l", "0",
                          "--log-level", "*:error", "--no-telemetry", prefix.c_str()};
    if (rte_eal_init(static_cast<int>(sizeof(argv) / sizeof(argv[0])), const_cast<char**>(argv)) < 0) {
        std::fprintf(stderr, "dp_harness: rte_eal_init failed (needs root for --no-huge)\n");
        return false;
    }
    eal_up = true;
    return true;
}

uint64_t burst_result::dropped() const
{
    uint64_t n = 0;
    for (uint64_t d : drops) {
        n += d;
    }
    return n;
}

drop_reason burst_result::sole_reason() const
{
    drop_reason r = drop_reason::count_;
    for (std::size_t i = 0; i < drops.size(); ++i) {
        if (drops[i] != 0) {
            if (r != drop_reason::count_) {
                return drop_reason::count_;
            }
            r = static_cast<drop_reason>(i);
        }
    }
    return r;
}

struct dp_harness::impl {
    std::string state_dir;
    std::unique_ptr<control::sa_manager> sas;
    std::unique_ptr<crypto::engine> engine;
    std::unique_ptr<replay::replay_table> replay;
    std::unique_ptr<frag::reasm_table> reasm;
    std::unique_ptr<dataplane::lcore_ctx> lc;
    std::atomic<bool> stop{false};
    uint32_t max_window = 1024;
    uint16_t mtu = 1500;

    ~impl();
    burst_result run(std::span<const frame> frames, config::direction dir);
};

namespace {

/// A fresh, unique name for DPDK objects of this process.
std::string dpdk_name(const char* what)
{
    static unsigned n = 0;
    return std::string("fz_") + what + std::to_string(n++);
}

bool start_ring_port(rte_mempool* pool, rte_ring*& tx, uint16_t& port_id)
{
    rte_ring* rx = rte_ring_create(dpdk_name("rx").c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx = rte_ring_create(dpdk_name("tx").c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (rx == nullptr || tx == nullptr) {
        return false;
    }
    const int id = rte_eth_from_rings(dpdk_name("port").c_str(), &rx, 1, &tx, 1, SOCKET_ID_ANY);
    if (id < 0) {
        return false;
    }
    port_id = static_cast<uint16_t>(id);
    rte_eth_conf conf{};
    return rte_eth_dev_configure(port_id, 1, 1, &conf) == 0 &&
           rte_eth_rx_queue_setup(port_id, 0, ring_size, SOCKET_ID_ANY, nullptr, pool) == 0 &&
           rte_eth_tx_queue_setup(port_id, 0, ring_size, SOCKET_ID_ANY, nullptr) == 0 && rte_eth_dev_start(port_id) == 0;
}

/// The ring ports and the mbuf pool, made once per process and shared by every harness.
struct shared_ports {
    rte_mempool* pool = nullptr;
    std::array<rte_ring*, 2> tx{}; ///< 0: clear port, 1: protected port
    std::array<uint16_t, 2> id{};
};

const shared_ports* ports()
{
    static shared_ports p;
    static bool ok = [] {
        // One mbuf holds the largest frame plus room for ESP, as in the gateway.
        p.pool = rte_pktmbuf_pool_create("fz_mbufs", 8191, 0, 0,
                                         static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + 18 + 9000 + 128),
                                         SOCKET_ID_ANY);
        return p.pool != nullptr && start_ring_port(p.pool, p.tx[0], p.id[0]) &&
               start_ring_port(p.pool, p.tx[1], p.id[1]) && p.id[1] < dataplane::max_ports;
    }();
    return ok ? &p : nullptr;
}

std::string fresh_state_dir()
{
    char tmpl[] = "/tmp/msecgw-fuzz-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    return d != nullptr ? std::string(d) : std::string();
}

} // namespace

dp_harness::impl::~impl()
{
    if (lc) {
        dataplane::detail::reasm_expire(*lc, true);
    }
    sas.reset();
    std::error_code ec;
    std::filesystem::remove_all(state_dir, ec);
}

dp_harness::dp_harness(std::unique_ptr<impl> p) : _p(std::move(p)) {}
dp_harness::~dp_harness() = default;

std::unique_ptr<dp_harness> dp_harness::create(std::string_view yaml)
{
    const shared_ports* sp = ports();
    if (!init_eal() || sp == nullptr) {
        std::fprintf(stderr, "dp_harness: no EAL, mbuf pool or ring ports\n");
        return nullptr;
    }
    auto p = std::make_unique<impl>();
    p->state_dir = fresh_state_dir();
    std::string text(yaml);
    for (std::size_t at; (at = text.find("@STATE@")) != std::string::npos;) {
        text.replace(at, 7, p->state_dir);
    }
    auto cfg = config::load_string(text, "harness.yaml");
    if (!cfg) {
        std::fprintf(stderr, "dp_harness: %s\n", cfg.err().detail.c_str());
        return nullptr;
    }
    for (const auto& sa : cfg->sas) {
        p->max_window = std::max(p->max_window, sa.replay_window);
    }
    for (const auto& port : cfg->ports) {
        p->mtu = std::max(p->mtu, port.mtu);
    }
    auto m = control::sa_manager::create(p->state_dir, 1);
    auto e = crypto::engine::create();
    if (!m || !e) {
        std::fprintf(stderr, "dp_harness: %s\n", (!m ? m.err() : e.err()).detail.c_str());
        return nullptr;
    }
    p->sas = std::move(m.value());
    if (auto r = p->sas->apply(*cfg); !r) {
        std::fprintf(stderr, "dp_harness: %s\n", r.err().detail.c_str());
        return nullptr;
    }
    p->engine = std::make_unique<crypto::engine>(std::move(e.value()));
    p->lc = std::make_unique<dataplane::lcore_ctx>();
    p->lc->stop = &p->stop;
    p->lc->state = p->sas->state_ptr();
    p->lc->qsbr = p->sas->qsbr();
    p->lc->engine = p->engine.get();
    p->lc->pool = sp->pool;
    p->reasm = std::make_unique<frag::reasm_table>(reasm_datagrams, ~uint64_t{0} / 2);
    p->lc->reasm = p->reasm.get();
    std::unique_ptr<dp_harness> h(new dp_harness(std::move(p)));
    h->reset();
    return h;
}

void dp_harness::reset()
{
    dataplane::detail::reasm_expire(*_p->lc, true);
    _p->replay = std::make_unique<replay::replay_table>(replay_windows, _p->max_window);
    _p->lc->replay = _p->replay.get();
}

const dataplane::dp_state& dp_harness::state() const { return _p->sas->current(); }

burst_result dp_harness::inbound(std::span<const frame> frames) { return _p->run(frames, config::direction::in); }
burst_result dp_harness::outbound(std::span<const frame> frames) { return _p->run(frames, config::direction::out); }

burst_result dp_harness::impl::run(std::span<const frame> frames, config::direction dir)
{
    const shared_ports& sp = *ports();
    const int rx = dir == config::direction::out ? 0 : 1;
    dataplane::rx_binding b;
    b.rx_port = sp.id[rx];
    b.tx_port = sp.id[1 - rx];
    b.role = dir == config::direction::out ? dataplane::path::outbound : dataplane::path::inbound;
    b.egress_mtu = mtu;
    std::array<rte_mbuf*, max_burst> pkts{};
    uint16_t n = 0;
    for (const frame& f : frames) {
        if (n == max_burst) {
            break;
        }
        rte_mbuf* m = rte_pktmbuf_alloc(sp.pool);
        if (m == nullptr) {
            break;
        }
        const auto len = static_cast<uint16_t>(std::min<std::size_t>(f.size(), rte_pktmbuf_tailroom(m)));
        auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, len));
        if (len != 0) {
            std::memcpy(d, f.data(), len);
        }
        pkts[n++] = m;
    }
    const dataplane::lcore_stats before = lc->stats;
    sas->tick(); // IV blocks for outbound SAs, as the control loop does
    dataplane::process_burst(*lc, sas->current(), b, pkts.data(), n);
    burst_result r;
    rte_mbuf* m = nullptr;
    while (rte_ring_sc_dequeue(sp.tx[1 - rx], reinterpret_cast<void**>(&m)) == 0) {
        const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
        r.out.emplace_back(d, d + m->data_len);
        rte_pktmbuf_free(m);
    }
    const dataplane::lcore_stats& after = lc->stats;
    for (std::size_t i = 0; i < drop_reason_count; ++i) {
        r.drops[i] = after.drops[i] - before.drops[i];
    }
    r.opened = after.opened - before.opened;
    r.sealed = after.sealed - before.sealed;
    r.bypassed = after.bypassed - before.bypassed;
    return r;
}

namespace {

/// The GCM op of an ESP frame under the inbound SA the SAD finds for it; false when the frame does
/// not parse as an unfragmented ESP packet or has no SA.
bool esp_op(const dataplane::dp_state& st, frame& f, crypto::gcm_op& op)
{
    packet::pkt_meta meta{};
    drop_reason why{};
    if (!packet::parse_frame(f.data(), static_cast<uint32_t>(f.size()), packet::ipv4_csum::trusted, meta, why) ||
        meta.proto != packet::proto_esp || meta.fragment) {
        return false;
    }
    uint8_t* ip = f.data() + meta.l3_off;
    esp::inb_header h{};
    if (!esp::read_inb_header(ip, meta.l3_hdr_len, meta.ip_len, h)) {
        return false;
    }
    const bool v4 = meta.family == 4;
    const uint32_t idx = st.regions.front().sad.lookup(h.spi, meta.family, ip + (v4 ? 16 : 24), ip + (v4 ? 12 : 8));
    if (idx == sa::sad::not_found) {
        return false;
    }
    uint8_t* esph = ip + h.esp_off;
    uint8_t* payload = esph + esp::esp_hdr_len + esp::iv_len;
    op = crypto::gcm_op{&st.in_sas[idx]->key, payload, h.cipher_len, esph + esp::esp_hdr_len, esph,
                        payload + h.cipher_len};
    return true;
}

} // namespace

bool dp_harness::reseal(frame& f)
{
    crypto::gcm_op op{};
    uint8_t ok = 0;
    return esp_op(state(), f, op) && crypto::seal_burst(*_p->engine, {&op, 1}, {&ok, 1}) == 1;
}

bool dp_harness::decrypt(frame& f)
{
    crypto::gcm_op op{};
    uint8_t ok = 0;
    return esp_op(state(), f, op) && crypto::open_burst(*_p->engine, {&op, 1}, {&ok, 1}) == 1;
}

namespace {

/// push_back per byte: GCC 12 misreports vector::insert of an initializer_list (-Warray-bounds).
void append(frame& f, std::initializer_list<uint8_t> bytes)
{
    for (uint8_t b : bytes) {
        f.push_back(b);
    }
}

frame ether(uint16_t ethertype, const uint8_t* dst_mac_src, uint16_t vlan)
{
    frame f;
    f.reserve(2048);
    append(f, {0x01, 0x00, 0x5e, dst_mac_src[0], dst_mac_src[1], dst_mac_src[2], 0x02, 0, 0, 0, 0, 1});
    if (vlan != 0xffff) {
        append(f, {0x81, 0x00, static_cast<uint8_t>(vlan >> 8), static_cast<uint8_t>(vlan)});
    }
    append(f, {static_cast<uint8_t>(ethertype >> 8), static_cast<uint8_t>(ethertype)});
    return f;
}

void put_udp(frame& f, uint16_t dport, uint16_t payload)
{
    const uint16_t udp_len = static_cast<uint16_t>(8 + payload);
    append(f, {0x9c, 0x40, static_cast<uint8_t>(dport >> 8), static_cast<uint8_t>(dport),
                       static_cast<uint8_t>(udp_len >> 8), static_cast<uint8_t>(udp_len), 0, 0});
    for (uint16_t i = 0; i < payload; ++i) {
        f.push_back(static_cast<uint8_t>(i * 7 + 1));
    }
}

} // namespace

frame udp4(const std::array<uint8_t, 4>& src, const std::array<uint8_t, 4>& dst, uint16_t payload, uint16_t vlan,
           uint16_t dport)
{
    const uint8_t mac[3] = {static_cast<uint8_t>(dst[1] & 0x7f), dst[2], dst[3]};
    frame f = ether(packet::ethertype_ipv4, mac, vlan);
    const std::size_t l3 = f.size();
    const uint16_t total = static_cast<uint16_t>(20 + 8 + payload);
    append(f, {0x45, 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total), 0x12, 0x34, 0, 0, 16,
                       packet::proto_udp, 0, 0});
    f.insert(f.end(), src.begin(), src.end());
    f.insert(f.end(), dst.begin(), dst.end());
    store_be16(f.data() + l3 + 10, packet::ipv4_header_checksum(f.data() + l3, 20));
    put_udp(f, dport, payload);
    return f;
}

frame udp6(const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst, uint16_t payload, uint16_t dport)
{
    const uint8_t mac[3] = {dst[13], dst[14], dst[15]};
    frame f = ether(packet::ethertype_ipv6, mac, 0xffff);
    f[0] = 0x33;
    f[1] = 0x33;
    const uint16_t plen = static_cast<uint16_t>(8 + payload);
    append(f, {0x60, 0, 0, 0, static_cast<uint8_t>(plen >> 8), static_cast<uint8_t>(plen), packet::proto_udp, 16});
    f.insert(f.end(), src.begin(), src.end());
    f.insert(f.end(), dst.begin(), dst.end());
    put_udp(f, dport, payload);
    return f;
}

} // namespace msecgw::fuzz
