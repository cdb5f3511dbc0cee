// [D] Source authentication cost per core: packets/s for tagging and verifying in each mode at
// 64 and 1420 B, next to AES-128-GCM sealing of the same packets with ipsec-mb (the ESP-only cost)
// in the same run, as ratios; the MAC and hash choices measured against their alternatives; and
// signatures/s for `sign`. CPU time of this thread; one burst = 32 packets. Nothing is asserted.
//
//   srcauth_bench [--seconds S]   (default 0.5 s per figure)

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crypto/auth.hh"
#include "srcauth/manifest.hh"
#include "srcauth/signed.hh"
#include "srcauth/tesla.hh"

using namespace msecgw;
using namespace msecgw::srcauth;

namespace {

constexpr uint32_t burst = 32;
constexpr uint32_t sender_id = 7;
double seconds_per_figure = 0.5;

double cpu_now()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

/// Accumulates CPU time of the timed parts only.
struct meter {
    double spent = 0;
    uint64_t packets = 0;
    template <class F>
    void timed(uint64_t n, F&& f)
    {
        const double t = cpu_now();
        f();
        spent += cpu_now() - t;
        packets += n;
    }
    double pps() const { return spent > 0 ? double(packets) / spent : 0; }
};

/// Runs step() (which times what it wants on m) until seconds_per_figure of timed CPU is spent.
double run(const std::function<void(meter&)>& step)
{
    meter m;
    for (int warm = 0; warm < 20; ++warm) {
        meter w;
        step(w);
    }
    while (m.spent < seconds_per_figure) {
        step(m);
    }
    return m.pps();
}

std::string new_pem(bool ed25519)
{
    return signer::generate(ed25519 ? wire::sig_alg::ed25519 : wire::sig_alg::ecdsa_p256).value().private_pem();
}

/// A pool of packet buffers: 64 bytes of header room, the inner packet, 64 bytes of trailer room.
struct pool {
    pool(uint32_t count, uint32_t size) : inner(size), stride(64 + size + 64), mem(size_t(count) * stride, 0xa5), n(count)
    {
        for (uint32_t i = 0; i < count; ++i) {
            mem[size_t(i) * stride + 64] = 0x45;
        }
    }
    uint8_t* at(uint32_t i) { return mem.data() + size_t(i % n) * stride; }
    uint32_t inner;
    size_t stride;
    std::vector<uint8_t> mem;
    uint32_t n;
};

struct figure {
    std::string what;
    double pps;
};

crypto::engine& eng()
{
    static crypto::engine e = std::move(crypto::engine::create().value());
    return e;
}

double esp_seal(uint32_t size)
{
    crypto::gcm_key key{};
    std::vector<uint8_t> km(20, 0x11);
    (void)crypto::make_gcm_key(crypto::aead::aes_128_gcm, km, key, eng());
    pool p(4096, size);
    uint32_t at = 0;
    std::array<crypto::gcm_op, burst> ops;
    std::array<uint8_t, burst> ok;
    std::array<uint8_t, 8> iv{}, aad{};
    std::array<std::array<uint8_t, 16>, burst> tags;
    return run([&](meter& m) {
        for (uint32_t k = 0; k < burst; ++k) {
            ops[k] = crypto::gcm_op{&key, p.at(at++) + 64, size, iv.data(), aad.data(), tags[k].data()};
        }
        m.timed(burst, [&] { crypto::seal_burst(eng(), ops, ok); });
    });
}

template <class Sender>
std::array<tag_job, burst> jobs_for(pool& p, uint32_t& at, size_t header)
{
    std::array<tag_job, burst> j;
    for (uint32_t k = 0; k < burst; ++k) {
        j[k] = tag_job{p.at(at++) + 64 - header, p.inner, wire::next_ipv4};
    }
    return j;
}

tesla_params tesla_p()
{
    return tesla_params{sender_id, 1'000'000'000, 1'000'000, 2, 1u << 20};
}

double tesla_tag(uint32_t size)
{
    tesla_sender s = std::move(tesla_sender::create(eng(), tesla_p()).value());
    pool p(4096, size);
    uint32_t at = 0;
    uint64_t now = 1'002'000'000;
    return run([&](meter& m) {
        auto j = jobs_for<tesla_sender>(p, at, tesla_sender::header_len);
        now += 10'000; // a new interval every 100 bursts
        m.timed(burst, [&] { s.tag_burst(eng(), j, now); });
    });
}

double tesla_verify(uint32_t size)
{
    tesla_sender s = std::move(tesla_sender::create(eng(), tesla_p()).value());
    signer sig = std::move(signer::from_pem(new_pem(true)).value());
    tesla_verifier v;
    v.add_sender(sender_id, std::move(sig_verifier::from_pem(sig.public_pem()).value()),
                 {.clock_offset_bound_ns = 100'000, .hold_capacity = 16384, .hold_timeout_ns = 0, .max_chain_walk = 4096});
    pool p(32768, size);
    uint32_t at = 0;
    uint64_t now = 1'002'000'000;
    std::array<uint8_t, 128> boot{};
    s.write_bootstrap(eng(), sig, now, boot);
    packet_view bv{boot.data(), 128, nullptr};
    decision bd{};
    v.verify_burst(eng(), std::span(&bv, 1), now, std::span(&bd, 1));
    std::array<packet_view, burst> views;
    std::array<decision, burst> d;
    std::array<settled, 256> out;
    return run([&](meter& m) {
        auto j = jobs_for<tesla_sender>(p, at, tesla_sender::header_len);
        now += 10'000;
        s.tag_burst(eng(), j, now);
        for (uint32_t k = 0; k < burst; ++k) {
            views[k] = packet_view{j[k].hdr, uint32_t(tesla_sender::header_len + size), nullptr};
        }
        m.timed(burst, [&] {
            v.verify_burst(eng(), views, now, d);
            while (v.drain(out) != 0) {
            }
        });
    });
}

double manifest_tag(uint32_t size, uint32_t n, bool ed25519)
{
    manifest_sender s = std::move(manifest_sender::create({sender_id, n, 0}).value());
    signer sig = std::move(signer::from_pem(new_pem(ed25519)).value());
    std::vector<uint8_t> mf(s.max_manifest_len());
    pool p(4096, size);
    uint32_t at = 0;
    return run([&](meter& m) {
        auto j = jobs_for<manifest_sender>(p, at, manifest_sender::header_len);
        m.timed(burst, [&] {
            s.tag_burst(eng(), j, 0);
            while (s.manifest_due(0)) {
                s.write_manifest(eng(), sig, mf);
            }
        });
    });
}

double manifest_verify(uint32_t size, uint32_t n, bool ed25519)
{
    manifest_sender s = std::move(manifest_sender::create({sender_id, n, 0}).value());
    signer sig = std::move(signer::from_pem(new_pem(ed25519)).value());
    manifest_verifier v;
    v.add_sender(sender_id, std::move(sig_verifier::from_pem(sig.public_pem()).value()),
                 {.hold_capacity = 4096, .hold_timeout_ns = 0, .best_effort = false, .max_digests = n, .kept_manifests = 4});
    std::vector<uint8_t> mf(s.max_manifest_len());
    pool p(8192, size);
    uint32_t at = 0;
    std::array<packet_view, burst> views;
    std::array<decision, burst> d;
    std::array<settled, 256> out;
    return run([&](meter& m) {
        auto j = jobs_for<manifest_sender>(p, at, manifest_sender::header_len);
        s.tag_burst(eng(), j, 0);
        for (uint32_t k = 0; k < burst; ++k) {
            views[k] = packet_view{j[k].hdr, uint32_t(manifest_sender::header_len + size), nullptr};
        }
        m.timed(burst, [&] { v.verify_burst(eng(), views, 0, d); });
        while (s.manifest_due(0)) {
            const size_t len = s.write_manifest(eng(), sig, mf);
            packet_view mv{mf.data(), uint32_t(len), nullptr};
            decision md{};
            m.timed(0, [&] {
                v.verify_burst(eng(), std::span(&mv, 1), 0, std::span(&md, 1));
                while (v.drain(out) != 0) {
                }
            });
        }
    });
}

double sign_tag(uint32_t size, bool ed25519)
{
    sign_sender s(sender_id, std::move(signer::from_pem(new_pem(ed25519)).value()));
    pool p(1024, size);
    uint32_t at = 0;
    std::array<uint8_t, burst> ok;
    return run([&](meter& m) {
        auto j = jobs_for<sign_sender>(p, at, sign_sender::header_len);
        m.timed(burst, [&] { s.tag_burst(eng(), j, ok); });
    });
}

double sign_verify(uint32_t size, bool ed25519)
{
    signer sig = std::move(signer::from_pem(new_pem(ed25519)).value());
    sign_verifier v;
    v.add_sender(sender_id, std::move(sig_verifier::from_pem(sig.public_pem()).value()));
    sign_sender s(sender_id, std::move(sig));
    pool p(1024, size);
    uint32_t at = 0;
    std::array<uint8_t, burst> ok;
    std::array<packet_view, burst> views;
    std::array<decision, burst> d;
    return run([&](meter& m) {
        auto j = jobs_for<sign_sender>(p, at, sign_sender::header_len);
        s.tag_burst(eng(), j, ok);
        for (uint32_t k = 0; k < burst; ++k) {
            views[k] = packet_view{j[k].hdr, uint32_t(sign_sender::header_len + size + sign_sender::trailer_len), nullptr};
        }
        m.timed(burst, [&] { v.verify_burst(eng(), views, d); });
    });
}

/// The primitives alone, to justify the choices: GMAC vs HMAC-SHA256 for the TESLA MAC, and
/// multi-buffer vs one-at-a-time SHA-256 for manifest digests.
/// TESLA MAC candidates over 48 header bytes + the inner packet: GMAC with ipsec-mb's
/// init/update/finalize calls (header and packet apart), GMAC in one GCM call (header slid next to
/// the packet, as tesla.cc does), GMAC and Poly1305 through the job API (packet only).
enum class mac_way { gmac_update, gmac_one_call, gmac_job, poly1305_job };

double prim_mac(uint32_t size, mac_way way)
{
    crypto::gcm_key k{};
    std::array<uint8_t, 16> raw{};
    std::array<uint8_t, 32> poly{};
    (void)crypto::make_gmac_key(eng(), raw, k);
    pool p(4096, size);
    uint32_t at = 0;
    std::array<crypto::gmac_op, burst> ops;
    std::array<uint8_t, burst> ok;
    std::array<std::array<uint8_t, 16>, burst> tags;
    std::array<uint8_t, 12> iv{};
    return run([&](meter& m) {
        for (uint32_t i = 0; i < burst; ++i) {
            uint8_t* b = p.at(at++);
            const uint32_t head = way == mac_way::gmac_one_call ? 16 : 0;
            ops[i] = crypto::gmac_op{&k, iv.data(), b + head, 48, b + 64, size, tags[i].data()};
        }
        m.timed(burst, [&] {
            if (way == mac_way::gmac_update || way == mac_way::gmac_one_call) {
                crypto::gmac_burst(eng(), ops, ok);
            } else {
                crypto::job_mac_burst(eng(), way == mac_way::gmac_job ? crypto::job_mac::aes128_gmac : crypto::job_mac::poly1305,
                                      k, poly, ops);
            }
        });
    });
}

double prim_hmac(uint32_t size)
{
    crypto::hmac_sha256_key k{};
    std::array<uint8_t, 16> raw{};
    (void)crypto::make_hmac_sha256_key(eng(), raw, k);
    pool p(4096, size);
    uint32_t at = 0;
    std::array<crypto::hmac_sha256_op, burst> ops;
    std::array<std::array<uint8_t, 16>, burst> tags;
    return run([&](meter& m) {
        for (uint32_t i = 0; i < burst; ++i) {
            ops[i] = crypto::hmac_sha256_op{&k, p.at(at++) + 16, size + 48, tags[i].data(), 16};
        }
        m.timed(burst, [&] { crypto::hmac_sha256_burst(eng(), ops); });
    });
}

double prim_sha(uint32_t size, bool multi)
{
    pool p(4096, size);
    uint32_t at = 0;
    std::array<crypto::sha256_op, burst> ops;
    std::array<std::array<uint8_t, 32>, burst> d;
    return run([&](meter& m) {
        for (uint32_t i = 0; i < burst; ++i) {
            ops[i] = crypto::sha256_op{p.at(at++) + 48, size + 16, d[i].data()};
        }
        m.timed(burst, [&] {
            if (multi) {
                crypto::sha256_burst(eng(), ops);
            } else {
                for (const auto& o : ops) {
                    crypto::sha256_one(eng(), o.data, o.len, o.digest);
                }
            }
        });
    });
}

} // namespace

int main(int argc, char** argv)
{
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--seconds") == 0) {
            seconds_per_figure = std::atof(argv[i + 1]);
        }
    }
    std::printf("ipsec-mb code path: %.*s; %.2f s of CPU per figure; burst %u\n", int(eng().arch().size()),
                eng().arch().data(), seconds_per_figure, burst);
    std::printf("%-56s %6s %12s %12s %10s\n", "mode / side", "bytes", "Mpps", "ESP Mpps", "ratio");
    for (uint32_t size : {64u, 1420u}) {
        const double esp = esp_seal(size);
        // ratio = rate of ESP + this mode / rate of ESP alone = 1 / (1 + t_mode / t_esp)
        auto line = [&](const char* what, double pps) {
            std::printf("%-56s %6u %12.3f %12.3f %10.2f\n", what, size, pps / 1e6, esp / 1e6, 1.0 / (1.0 + esp / pps));
        };
        line("tesla tag (GMAC)", tesla_tag(size));
        line("tesla verify (hold, disclose, GMAC)", tesla_verify(size));
        line("manifest tag N=64 (SHA-256 mb + Ed25519)", manifest_tag(size, 64, true));
        line("manifest tag N=256 (SHA-256 mb + Ed25519)", manifest_tag(size, 256, true));
        line("manifest tag N=64 (ECDSA P-256)", manifest_tag(size, 64, false));
        line("manifest verify N=64 (Ed25519)", manifest_verify(size, 64, true));
        line("manifest verify N=256 (Ed25519)", manifest_verify(size, 256, true));
        line("manifest verify N=64 (ECDSA P-256)", manifest_verify(size, 64, false));
        line("sign tag (Ed25519)", sign_tag(size, true));
        line("sign verify (Ed25519)", sign_verify(size, true));
        line("sign tag (ECDSA P-256)", sign_tag(size, false));
        line("sign verify (ECDSA P-256)", sign_verify(size, false));
        line("primitive: GMAC-AES128 one GCM call (TESLA MAC, chosen)", prim_mac(size, mac_way::gmac_one_call));
        line("primitive: GMAC-AES128 init/update/finalize", prim_mac(size, mac_way::gmac_update));
        line("primitive: GMAC-AES128 job API (packet only)", prim_mac(size, mac_way::gmac_job));
        line("primitive: Poly1305 job API (packet only)", prim_mac(size, mac_way::poly1305_job));
        line("primitive: HMAC-SHA256 mb (alternative)", prim_hmac(size));
        line("primitive: SHA-256 multi-buffer (chosen)", prim_sha(size, true));
        line("primitive: SHA-256 one at a time", prim_sha(size, false));
    }
    return 0;
}
