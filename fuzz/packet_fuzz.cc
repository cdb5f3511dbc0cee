// The packet path: parse + classify + inbound ESP (SAD, replay window, GCM open, trailer, inner
// parse, policy check) or outbound seal, through dataplane::process_burst on a real SA snapshot.
// Input: one flags byte, then records (u16 length + frame) forming one burst.
//   flags bit 0: outbound (clear port) instead of inbound (protected port)
//   flags bit 1: re-encrypt every ESP frame with its SA's key first, so that mutated plaintext
//                (padding, next header, inner header) gets past the ICV check
#include <cstdint>
#include <cstdlib>

#include "dp_harness.hh"
#include "input.hh"
#include "packet/packet.hh"

using namespace msecgw;

namespace {
fuzz::dp_harness* harness = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    harness = fuzz::init_eal() ? fuzz::dp_harness::create().release() : nullptr;
    if (harness == nullptr) {
        std::abort();
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const uint8_t flags = data[0];
    std::vector<fuzz::frame> frames;
    for (auto r : fuzz::split_records(data + 1, size - 1, max_burst)) {
        frames.emplace_back(r.begin(), r.end());
        if (flags & 2) {
            harness->reseal(frames.back());
        }
    }
    harness->reset();
    const fuzz::burst_result r = flags & 1 ? harness->outbound(frames) : harness->inbound(frames);
    // Whatever leaves must itself be a well-formed frame.
    for (const auto& f : r.out) {
        packet::pkt_meta m{};
        drop_reason why{};
        if (!packet::parse_frame(f.data(), static_cast<uint32_t>(f.size()), packet::ipv4_csum::verify, m, why)) {
            std::abort();
        }
    }
    return 0;
}
