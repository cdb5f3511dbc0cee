// Source authentication: the tag parser (common header) and every verifier behind it (TESLA
// data / bootstrap / disclosure, manifests and manifest_data, per-packet signatures) with a
// registered sender. Input: records (u16 length + packet) forming one burst, given to each verifier.
#include <cstdint>
#include <cstdlib>

#include "input.hh"
#include "keys.hh"
#include "srcauth/manifest.hh"
#include "srcauth/signed.hh"
#include "srcauth/tesla.hh"

using namespace msecgw;
using namespace msecgw::srcauth;

namespace {

constexpr uint32_t sender = fuzz::srcauth_sender;

struct verifiers {
    crypto::engine engine;
    sig_verifier anchor; ///< parsed once: OpenSSL's PEM decoder costs more than the rest of an input
};

verifiers* v = nullptr;

sig_verifier anchor()
{
    auto a = v->anchor.share();
    if (!a) {
        std::abort();
    }
    return std::move(a.value());
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    auto e = crypto::engine::create();
    auto s = signer::from_pem(fuzz::srcauth_private_pem);
    if (!e || !s) {
        std::abort();
    }
    auto a = sig_verifier::from_pem(s->public_pem());
    if (!a) {
        std::abort();
    }
    v = new verifiers{std::move(e.value()), std::move(a.value())};
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    // The verifiers take packets they may rewrite in place, as the data plane's mbufs are: give
    // them a copy of the (read-only) input.
    std::vector<uint8_t> copy(data, data + size);
    std::vector<packet_view> in;
    for (auto r : fuzz::split_records(copy.data(), copy.size(), max_burst)) {
        in.push_back(packet_view{copy.data() + (r.data() - copy.data()), static_cast<uint32_t>(r.size()), nullptr});
    }
    std::vector<decision> out(in.size());
    std::array<settled, 2 * max_burst> done;
    constexpr uint64_t now = 1'000'000'000;

    tesla_verifier t;
    tesla_receiver_policy tp;
    tp.clock_offset_bound_ns = 1'000'000;
    tp.hold_capacity = 16;
    tp.max_chain_walk = 64;
    t.add_sender(sender, anchor(), tp);
    t.verify_burst(v->engine, in, now, out);
    t.poll(v->engine, now + 1'000'000'000);
    while (t.drain(done) != 0) {
    }

    manifest_verifier m;
    manifest_receiver_policy mp;
    mp.hold_capacity = 16;
    mp.hold_timeout_ns = 1000;
    m.add_sender(sender, anchor(), mp);
    m.verify_burst(v->engine, in, now, out);
    m.poll(now + 1'000'000);
    while (m.drain(done) != 0) {
    }

    sign_verifier s;
    s.add_sender(sender, anchor());
    s.verify_burst(v->engine, in, out);
    return 0;
}
