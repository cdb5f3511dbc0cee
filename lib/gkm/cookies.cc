#include "cookies.hh"

#include <algorithm>

#include "wire.hh"

namespace msecgw::gkm {

void cookie_jar::rotate_if_due(time_point now, std::chrono::steady_clock::duration lifetime)
{
    if (_current.empty() || now - _rotated >= lifetime) {
        _previous = std::move(_current);
        _current = random_secret(prf_size);
        ++_version;
        _rotated = now;
    }
}

bytes cookie_jar::make(byte_view nonce_i, const endpoint& peer, uint64_t spi_i) const
{
    return make_with(_current, _version, nonce_i, peer, spi_i);
}

bool cookie_jar::valid(byte_view cookie, byte_view nonce_i, const endpoint& peer, uint64_t spi_i) const
{
    if (cookie.empty()) {
        return false;
    }
    const bool current = cookie[0] == _version;
    const secret& key = current ? _current : _previous;
    if (key.empty() || (!current && cookie[0] != uint8_t(_version - 1))) {
        return false;
    }
    return equal_constant_time(cookie, make_with(key, cookie[0], nonce_i, peer, spi_i));
}

bytes cookie_jar::make_with(const secret& key, uint8_t version, byte_view nonce_i, const endpoint& peer, uint64_t spi_i)
{
    bytes input(nonce_i.begin(), nonce_i.end());
    wire_writer(input).u32(peer.address);
    wire_writer(input).u64(spi_i);
    secret mac = prf(key.view(), input);
    bytes out(1 + mac.size());
    out[0] = version;
    std::copy(mac.view().begin(), mac.view().end(), out.begin() + 1);
    return out;
}

} // namespace msecgw::gkm
