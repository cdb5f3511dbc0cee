#pragma once
/// Stateless IKEv2 cookies for the GCKS (RFC 7296 §2.6; internal header).

#include <chrono>
#include <cstdint>

#include "crypto.hh"
#include "udp.hh"

namespace msecgw::gkm {

/// Cookie = version ‖ prf(secret, Ni ‖ IPi ‖ SPIi), 33 bytes. The secret rotates; cookies made
/// with the previous one are still accepted, so a retry across one rotation works.
class cookie_jar {
public:
    using time_point = std::chrono::steady_clock::time_point;

    /// Starts a new secret when none exists yet or the current one is lifetime old.
    void rotate_if_due(time_point now, std::chrono::steady_clock::duration lifetime);
    bytes make(byte_view nonce_i, const endpoint& peer, uint64_t spi_i) const;
    /// True for a cookie that make() gave this initiator under the current or previous secret.
    bool valid(byte_view cookie, byte_view nonce_i, const endpoint& peer, uint64_t spi_i) const;

private:
    static bytes make_with(const secret& key, uint8_t version, byte_view nonce_i, const endpoint& peer, uint64_t spi_i);

    secret _current;
    secret _previous;
    uint8_t _version = 0;
    time_point _rotated;
};

} // namespace msecgw::gkm
