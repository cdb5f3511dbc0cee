#include "gateway.hh"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "msecgw_build_config.hh"

namespace msecgw::app {

namespace {

constexpr unsigned descs_per_queue = 2 * 2048; ///< rx + tx ring upper bound per queue pair
constexpr unsigned l2_max = 18;                 ///< Ethernet + one 802.1Q tag
constexpr unsigned esp_room = 128;              ///< ESP tunnel overhead (outer v6 + ESP + IV + trailer)
constexpr uint32_t replay_windows_per_lcore = 4096; ///< (SA, source) pairs one worker tracks

/// Largest replay window any inbound SA (or group) asks for (at least the default), fixed at start.
uint32_t max_replay_window(const config::gateway_cfg& cfg)
{
    uint32_t w = 1024;
    for (const auto& sa : cfg.sas) {
        w = std::max(w, sa.replay_window);
    }
    for (const auto& g : cfg.groups) {
        w = std::max(w, g.replay_window);
    }
    return w;
}

/// One mbuf holds the largest frame of any port plus room to add ESP: frames never span mbufs.
uint16_t mbuf_data_size(const config::gateway_cfg& cfg)
{
    unsigned mtu = 0;
    for (const auto& p : cfg.ports) {
        mtu = std::max<unsigned>(mtu, p.mtu);
    }
    return static_cast<uint16_t>(std::max<unsigned>(RTE_MBUF_DEFAULT_BUF_SIZE,
                                                    RTE_PKTMBUF_HEADROOM + l2_max + mtu + esp_room));
}

/// Source-authentication senders and verifiers hold state (key chains, hold buffers) made at start.
bool same_source_auth(const config::gateway_cfg& a, const config::gateway_cfg& b)
{
    return std::equal(a.source_auth.begin(), a.source_auth.end(), b.source_auth.begin(), b.source_auth.end(),
                      [](const auto& x, const auto& y) { return *x == *y; });
}

} // namespace

result<std::unique_ptr<gateway>> gateway::create(config::gateway_cfg cfg, const control::key_manager* keys)
{
    if (cfg.ports.empty()) {
        return error{errc::config_missing_key, cfg.file + ": ports: a gateway needs ports (only --gcks-only runs "
                                                          "the key server alone)"};
    }
    std::unique_ptr<gateway> gw(new gateway());
    gw->_keys = keys;
    gw->_cfg = keys != nullptr ? keys->expand(cfg) : std::move(cfg);
    std::error_code ec;
    std::filesystem::create_directories(gw->_cfg.state_dir, ec);
    if (ec) {
        return error{errc::io, "state_dir " + gw->_cfg.state_dir + ": " + ec.message()};
    }
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore)
    {
        auto lc = std::make_unique<dataplane::lcore_ctx>();
        lc->lcore_id = lcore;
        lc->index = static_cast<uint16_t>(gw->_workers.size());
        lc->stop = &gw->_stop;
        gw->_workers.push_back(std::move(lc));
    }
    if (gw->_workers.empty()) {
        return error{errc::unsupported, "no worker lcore: give EAL at least two lcores (e.g. -l 0,1); "
                                        "the main lcore runs the control plane"};
    }
    for (const auto& p : gw->_cfg.ports) {
        if (p.port >= dataplane::max_ports) {
            return error{errc::unsupported, gw->_cfg.file + ":" + std::to_string(p.line) +
                                                ": ports: port ids up to " +
                                                std::to_string(dataplane::max_ports - 1) + " are supported"};
        }
    }
    if (auto r = gw->start_ports(); !r) {
        return r.err();
    }
    if (auto r = gw->start_workers(); !r) {
        return r.err();
    }
    gw->bind_workers();
    return gw;
}

result<void> gateway::start_ports()
{
    auto q = port::common_queue_count(_cfg.ports, static_cast<uint16_t>(_workers.size()));
    if (!q) {
        return q.err();
    }
    _nb_queues = *q;
    const unsigned n_mbufs = std::max(8191u, static_cast<unsigned>(_cfg.ports.size()) * _nb_queues *
                                                 descs_per_queue + 4096u);
    _pool = rte_pktmbuf_pool_create("msecgw_mbufs", n_mbufs, 256, 0, mbuf_data_size(_cfg),
                                    static_cast<int>(rte_socket_id()));
    if (_pool == nullptr) {
        return error{errc::dpdk, "mbuf pool of " + std::to_string(n_mbufs) +
                                     " mbufs: out of memory (raise EAL -m or use hugepages)"};
    }
    const std::string dir = _cfg.drivers_cfg.empty() ? MSECGW_DRIVERS_CFG_DIR : _cfg.drivers_cfg;
    for (const auto& pc : _cfg.ports) {
        auto st = port::start_port(pc, dir, _nb_queues, _pool);
        if (!st) {
            return st.err();
        }
        _ports.push_back(std::move(st.value()));
    }
    return port::pair_ports(_ports);
}

result<void> gateway::start_workers()
{
    auto m = control::sa_manager::create(_cfg.state_dir, static_cast<uint16_t>(_workers.size()));
    if (!m) {
        return m.err();
    }
    _sas = std::move(m.value());
    if (auto r = _sas->apply(_cfg); !r) {
        return r.err();
    }
    const bool signer = std::any_of(_cfg.source_auth.begin(), _cfg.source_auth.end(), [](const auto& b) {
        return b->mode == config::source_auth_mode::manifest && !b->signing_key.empty() && !b->sign_on_worker;
    });
    if (signer) {
        auto s = dataplane::manifest_signer::create(static_cast<uint16_t>(_workers.size()));
        if (!s) {
            return s.err();
        }
        _signer = std::move(s.value());
    }
    for (auto& lc : _workers) {
        auto e = crypto::engine::create();
        if (!e) {
            return e.err();
        }
        _engines.push_back(std::make_unique<crypto::engine>(std::move(e.value())));
        _replay.push_back(std::make_unique<replay::replay_table>(replay_windows_per_lcore, max_replay_window(_cfg),
                                                                 static_cast<uint32_t>(lc->lcore_id)));
        _reasm.push_back(std::make_unique<frag::reasm_table>(_cfg.reassembly.max_datagrams,
                                                             rte_get_tsc_hz() / 1000 * _cfg.reassembly.timeout_ms));
        if (!_cfg.source_auth.empty()) {
            auto a = dataplane::make_srcauth_lcore(_cfg, *_engines.back(), lc->index, dataplane::realtime_ns());
            if (!a) {
                return a.err();
            }
            _auth.push_back(std::move(a.value()));
            lc->auth = _auth.back().get();
            if (_signer) {
                lc->auth->signing = &_signer->lane(lc->index);
            }
        }
        lc->engine = _engines.back().get();
        lc->replay = _replay.back().get();
        lc->reasm = _reasm.back().get();
        lc->pool = _pool;
        lc->state = _sas->state_ptr();
        lc->qsbr = _sas->qsbr();
    }
    return {};
}

result<void> gateway::reload(config::gateway_cfg cfg)
{
    if (cfg.ports.size() != _cfg.ports.size()) {
        return error{errc::unsupported, cfg.file + ": ports cannot change while running"};
    }
    // Workers hold region indexes of their ports: regions and the ports' regions stay as started.
    if (cfg.regions != _cfg.regions ||
        !std::equal(cfg.ports.begin(), cfg.ports.end(), _cfg.ports.begin(),
                    [](const auto& a, const auto& b) { return a.region == b.region; })) {
        return error{errc::unsupported, cfg.file + ": regions and the ports' regions change only with a restart"};
    }
    // Each group registered with the key server of its region at start (key_manager).
    for (const auto& g : cfg.groups) {
        const config::group_cfg* was = _cfg.find_group(g.name);
        if (was != nullptr && was->region != g.region) {
            return error{errc::unsupported, cfg.file + ":" + std::to_string(g.line) + ": group '" + g.name +
                                                "' changes region only with a restart"};
        }
    }
    if (cfg.reassembly.timeout_ms != _cfg.reassembly.timeout_ms ||
        cfg.reassembly.max_datagrams != _cfg.reassembly.max_datagrams) {
        return error{errc::unsupported, cfg.file + ": reassembly settings change only with a restart"};
    }
    if (!same_source_auth(cfg, _cfg)) {
        return error{errc::unsupported, cfg.file + ": source_auth settings change only with a restart"};
    }
    if (_keys != nullptr) {
        cfg = _keys->expand(cfg);
    }
    if (max_replay_window(cfg) > _replay.front()->max_window_size()) {
        return error{errc::unsupported, cfg.file + ": a replay_window larger than at start needs a restart"};
    }
    if (auto r = _sas->apply(cfg); !r) {
        return r.err();
    }
    _cfg = std::move(cfg);
    return {};
}

result<void> gateway::write_keylog(const std::string& path) const
{
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) {
        return error{errc::io, "--keylog " + path + ": cannot write"};
    }
    ::fchmod(fileno(f), 0600);
    for (auto& line : _sas->keylog_lines(_cfg)) {
        std::fprintf(f, "%s\n", line.c_str());
        OPENSSL_cleanse(line.data(), line.size());
    }
    return std::fclose(f) == 0 ? result<void>{} : result<void>{error{errc::io, "--keylog " + path + ": write failed"}};
}

void gateway::bind_workers()
{
    for (auto& lc : _workers) {
        if (lc->index >= _nb_queues) {
            continue; // more lcores than queues: this one stays idle
        }
        lc->idle_sleep_us = _cfg.idle_sleep_us;
        for (const auto& p : _ports) {
            const auto& peer = *std::find_if(_ports.begin(), _ports.end(),
                                             [&](const auto& x) { return x.port_id == p.peer; });
            dataplane::rx_binding& b = lc->bindings[lc->n_bindings++];
            b.rx_port = p.port_id;
            b.rx_queue = lc->index;
            b.tx_port = peer.port_id;
            b.tx_queue = lc->index;
            b.egress_mtu = peer.mtu;
            b.csum = p.rx_ipv4_cksum ? packet::ipv4_csum::trusted : packet::ipv4_csum::verify;
            b.tx_ipv4_cksum = peer.tx_ipv4_cksum;
            const bool rx_clear = p.side == config::port_side::clear;
            const bool tx_clear = peer.side == config::port_side::clear;
            b.role = rx_clear ? dataplane::path::outbound : tx_clear ? dataplane::path::inbound : dataplane::path::boundary;
            b.in_region = p.region;     // a clear port's region is unused
            b.out_region = peer.region;
        }
    }
}

result<void> gateway::launch()
{
    if (_signer) {
        _signer->start(); // before the workers, stopped after them
    }
    for (auto& lc : _workers) {
        if (lc->n_bindings == 0) {
            continue;
        }
        if (int rc = rte_eal_remote_launch(dataplane::worker_main, lc.get(), lc->lcore_id); rc != 0) {
            stop_and_wait();
            return error{errc::dpdk, "cannot launch worker on lcore " + std::to_string(lc->lcore_id)};
        }
    }
    _launched = true;
    return {};
}

void gateway::stop_and_wait()
{
    _stop.store(true, std::memory_order_relaxed);
    rte_eal_mp_wait_lcore();
    if (_signer) {
        _signer->stop();
    }
    _launched = false;
}

stats::totals gateway::collect(double seconds) const
{
    std::vector<std::pair<unsigned, const dataplane::lcore_stats*>> lcores;
    for (const auto& lc : _workers) {
        if (lc->n_bindings != 0) {
            lcores.emplace_back(lc->lcore_id, &lc->stats);
        }
    }
    return stats::collect(_ports, lcores, seconds);
}

gateway::~gateway()
{
    if (_launched) {
        stop_and_wait();
    }
    for (const auto& p : _ports) {
        port::stop_port(p.port_id);
    }
    _sas.reset();
    rte_mempool_free(_pool);
}

} // namespace msecgw::app
