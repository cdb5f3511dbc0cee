#pragma once
/// In-process data-plane harness for fuzz targets and robustness tests: one worker lcore context
/// (real ipsec-mb engine, replay table, reassembly table) over a real dp_state built by the
/// control plane's sa_manager from a YAML config, and two ring ports (0 clear, 1 protected) in
/// place of NICs. A burst goes through dataplane::process_burst exactly as a worker runs it; what
/// it transmits is read back from the tx ring, what it drops is counted by reason.
/// Needs DPDK's EAL: call init_eal() once per process first.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/drop_reason.hh"
#include "dataplane/dp_state.hh"

namespace msecgw::fuzz {

using frame = std::vector<uint8_t>;

/// EAL without hugepages, PCI or shared config, one lcore, a private file prefix. Idempotent;
/// false (with a message on stderr) if EAL does not start.
bool init_eal();

/// What one burst did.
struct burst_result {
    std::vector<frame> out;                              ///< transmitted frames, in order
    std::array<uint64_t, drop_reason_count> drops{};     ///< by reason
    uint64_t opened = 0, sealed = 0, bypassed = 0;

    uint64_t dropped() const;
    /// The only reason anything was dropped for, or count_ when none or several.
    drop_reason sole_reason() const;
};

/// Keying material (key || salt) of the SAs in default_config (hex in the YAML).
inline constexpr std::array<uint8_t, 20> key_v4{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
                                               0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0xca, 0xfe, 0xba, 0xbe};

/// Two ports (0 clear, 1 protected); in and out SA pairs with equal SPI and key for IPv4
/// (239.1.0.0/16, AES-128-GCM, replay window 1024), IPv6 (ff3e::1:0/112, AES-256-GCM, window 64)
/// and an IPv4 group without replay protection (239.2.0.0/16); bypass, discard and unmatched
/// traffic. `@STATE@` stands for the harness's state directory.
extern const std::string_view default_config;

class dp_harness {
public:
    /// Builds the snapshot from `yaml` (with @STATE@ replaced by a fresh temporary directory).
    /// Returns null with a message on stderr when the config does not load.
    static std::unique_ptr<dp_harness> create(std::string_view yaml = default_config);
    ~dp_harness();
    dp_harness(const dp_harness&) = delete;
    dp_harness& operator=(const dp_harness&) = delete;

    /// One burst (at most max_burst frames) received on the protected port (ESP -> clear).
    burst_result inbound(std::span<const frame> frames);
    /// One burst received on the clear port (clear -> ESP).
    burst_result outbound(std::span<const frame> frames);
    burst_result inbound(const frame& f) { return inbound(std::span<const frame>(&f, 1)); }
    burst_result outbound(const frame& f) { return outbound(std::span<const frame>(&f, 1)); }

    /// Forgets every replay window and held fragment (each fuzz input starts from the same state).
    void reset();

    /// Re-encrypts an ESP frame in place with the key of the inbound SA the SAD finds for it: the
    /// bytes after the IV become the plaintext and the ICV is recomputed, so that corrupted
    /// plaintext (trailer, inner header) reaches the code after the ICV check. False when the
    /// frame does not parse as ESP or has no SA.
    bool reseal(frame& f);
    /// The inverse: decrypts an ESP frame in place (the ICV left as it was); false when it does
    /// not parse, has no SA or does not authenticate.
    bool decrypt(frame& f);

    const dataplane::dp_state& state() const;

    struct impl;

private:
    explicit dp_harness(std::unique_ptr<impl> p);
    std::unique_ptr<impl> _p;
};

/// Builders for valid test frames (Ethernet + IPv4/IPv6 + UDP with a payload of `payload` bytes).
frame udp4(const std::array<uint8_t, 4>& src, const std::array<uint8_t, 4>& dst, uint16_t payload,
           uint16_t vlan = 0xffff, uint16_t dport = 5000);
frame udp6(const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst, uint16_t payload,
           uint16_t dport = 5000);

} // namespace msecgw::fuzz
