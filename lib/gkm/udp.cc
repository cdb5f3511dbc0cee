#include "udp.hh"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace msecgw::gkm {

namespace {

sockaddr_in to_sockaddr(const endpoint& e)
{
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(e.address);
    sa.sin_port = htons(e.port);
    return sa;
}

endpoint from_sockaddr(const sockaddr_in& sa)
{
    return endpoint{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}

error socket_error(std::string_view what, const endpoint& e)
{
    return error{errc::io, std::string(what) + " " + e.to_string() + ": " + std::strerror(errno)};
}

} // namespace

result<endpoint> endpoint::parse(const std::string& address, uint16_t port)
{
    in_addr a{};
    if (inet_pton(AF_INET, address.c_str(), &a) != 1) {
        return error{errc::config_bad_value, "not an IPv4 address: '" + address + "'"};
    }
    return endpoint{ntohl(a.s_addr), port};
}

std::string endpoint::to_string() const
{
    in_addr a{htonl(address)};
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &a, text, sizeof text);
    return std::string(text) + ":" + std::to_string(port);
}

result<udp_socket> udp_socket::open(const endpoint& local)
{
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return socket_error("socket", local);
    }
    sockaddr_in sa = to_sockaddr(local);
    socklen_t len = sizeof sa;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
        error err = socket_error("bind", local);
        ::close(fd);
        return err;
    }
    return udp_socket(fd, from_sockaddr(sa));
}

udp_socket::udp_socket(udp_socket&& other) noexcept : _fd(other._fd), _local(other._local)
{
    other._fd = -1;
}

udp_socket& udp_socket::operator=(udp_socket&& other) noexcept
{
    if (this != &other) {
        if (_fd >= 0) {
            ::close(_fd);
        }
        _fd = other._fd;
        _local = other._local;
        other._fd = -1;
    }
    return *this;
}

udp_socket::~udp_socket()
{
    if (_fd >= 0) {
        ::close(_fd);
    }
}

bool udp_socket::send_to(const endpoint& to, byte_view data) const
{
    sockaddr_in sa = to_sockaddr(to);
    ssize_t n = ::sendto(_fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    return n == static_cast<ssize_t>(data.size());
}

std::optional<received_datagram> udp_socket::receive() const
{
    bytes buffer(65536);
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ssize_t n = ::recvfrom(_fd, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&sa), &len);
    if (n < 0) {
        return std::nullopt;  // EAGAIN: queue empty (other errors are transient for UDP)
    }
    buffer.resize(size_t(n));
    return received_datagram{from_sockaddr(sa), std::move(buffer)};
}

} // namespace msecgw::gkm
