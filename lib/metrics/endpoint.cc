// --metrics ADDR:PORT: parsing and an early bind check (before the EAL starts).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "metrics.hh"

namespace msecgw::metrics {

namespace {

error bad(std::string_view text, std::string_view why)
{
    return error{errc::config_bad_value, "--metrics '" + std::string(text) + "': " + std::string(why) +
                                             " (expected ADDR:PORT, e.g. 127.0.0.1:9464)"};
}

} // namespace

std::string endpoint::to_string() const
{
    return addr + ":" + std::to_string(port);
}

result<endpoint> parse_endpoint(std::string_view text)
{
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return bad(text, "no port");
    }
    std::string_view host = text.substr(0, colon);
    const std::string_view port = text.substr(colon + 1);
    endpoint ep;
    unsigned long p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size()) {
        return bad(text, port.empty() ? "no port" : "port is not a number");
    }
    if (p == 0 || p > 65535) {
        return bad(text, "port out of range 1-65535");
    }
    ep.port = static_cast<uint16_t>(p);
    if (host.find(':') != std::string_view::npos || host.find('[') != std::string_view::npos) {
        // Debian's civetweb (prometheus-cpp's HTTP server) is built without IPv6.
        return bad(text, "IPv6 listen addresses are not supported by this build's HTTP server");
    }
    ep.addr = host.empty() ? "0.0.0.0" : host == "localhost" ? "127.0.0.1" : std::string(host);
    in_addr a{};
    if (inet_pton(AF_INET, ep.addr.c_str(), &a) != 1) {
        return bad(text, "not an IPv4 address");
    }
    return ep;
}

result<void> check_bindable(const endpoint& ep)
{
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(ep.port);
    inet_pton(AF_INET, ep.addr.c_str(), &sa.sin_addr);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return error{errc::io, "--metrics " + ep.to_string() + ": socket: " + std::strerror(errno)};
    }
    const int one = 1; // as the exporter's server does: a port in TIME_WAIT is free
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    const int err = errno;
    ::close(fd);
    if (rc != 0) {
        return error{errc::io, "--metrics " + ep.to_string() + ": cannot listen: " + std::strerror(err)};
    }
    return {};
}

} // namespace msecgw::metrics
