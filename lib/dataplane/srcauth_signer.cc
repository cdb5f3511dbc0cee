// The manifest signing thread (srcauth_signer.hh).
#include "srcauth_signer.hh"

#include <pthread.h>

#include <chrono>
#include <string>

#include "srcauth_stage.hh"

namespace msecgw::dataplane {

namespace {

constexpr unsigned take = 16; ///< jobs taken from a lane at once

void free_ring(rte_ring*& r)
{
    rte_ring_free(r);
    r = nullptr;
}

} // namespace

result<std::unique_ptr<manifest_signer>> manifest_signer::create(uint16_t lanes)
{
    std::unique_ptr<manifest_signer> s(new manifest_signer());
    auto e = crypto::engine::create();
    if (!e) {
        return e.err();
    }
    s->_engine = std::make_unique<crypto::engine>(std::move(e.value()));
    for (uint16_t i = 0; i < lanes; ++i) {
        auto l = std::make_unique<sign_lane>();
        const std::string a = "msecgw_sign_" + std::to_string(i), b = "msecgw_signed_" + std::to_string(i);
        l->to_sign = rte_ring_create(a.c_str(), sign_lane::depth, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
        l->signed_back = rte_ring_create(b.c_str(), sign_lane::depth, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (l->to_sign == nullptr || l->signed_back == nullptr) {
            free_ring(l->to_sign);
            free_ring(l->signed_back);
            return error{errc::dpdk, "cannot create the manifest signing rings of lane " + std::to_string(i)};
        }
        s->_lanes.push_back(std::move(l));
    }
    return s;
}

manifest_signer::~manifest_signer()
{
    stop();
    for (auto& l : _lanes) {
        free_ring(l->to_sign);
        free_ring(l->signed_back);
    }
}

void manifest_signer::start()
{
    _stop.store(false, std::memory_order_relaxed);
    _thread = std::thread([this] { run(); });
    pthread_setname_np(_thread.native_handle(), "msecgw-signer");
}

void manifest_signer::stop()
{
    _stop.store(true, std::memory_order_relaxed);
    if (_thread.joinable()) {
        _thread.join();
    }
}

void manifest_signer::run()
{
    std::array<void*, take> got;
    while (!_stop.load(std::memory_order_relaxed)) {
        unsigned any = 0;
        for (auto& l : _lanes) {
            const unsigned n = rte_ring_sc_dequeue_burst(l->to_sign, got.data(), take, nullptr);
            for (unsigned k = 0; k < n; ++k) {
                auto& j = *static_cast<sign_job*>(got[k]);
                j.ok = srcauth::sign_manifest(*_engine, j.snd->signer, {j.manifest, j.len}) ? 1 : 0;
            }
            // never full: a lane has fewer jobs than either ring holds
            rte_ring_sp_enqueue_burst(l->signed_back, got.data(), n, nullptr);
            any += n;
        }
        if (any == 0) {
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    }
}

} // namespace msecgw::dataplane
