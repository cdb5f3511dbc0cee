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

result<udp_socket> udp_socket::open_multicast(const endpoint& group, uint32_t interface_address)
{
    if (!is_multicast(group.address)) {
        return error{errc::config_bad_value, "not an IPv4 multicast address: " + group.to_string()};
    }
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return socket_error("socket", group);
    }
    const int on = 1;
    sockaddr_in sa = to_sockaddr(group);
    ip_mreq mreq{};
    mreq.imr_multiaddr.s_addr = htonl(group.address);
    mreq.imr_interface.s_addr = htonl(interface_address);
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
        error err = socket_error("join multicast group", group);
        ::close(fd);
        return err;
    }
    return udp_socket(fd, group);
}

result<void> udp_socket::set_multicast_sender(uint32_t interface_address, uint8_t ttl) const
{
    in_addr ifaddr{htonl(interface_address)};
    const unsigned char loop = 1;
    const unsigned char hops = ttl;
    if (::setsockopt(_fd, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof ifaddr) != 0 ||
        ::setsockopt(_fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0 ||
        ::setsockopt(_fd, IPPROTO_IP, IP_MULTICAST_TTL, &hops, sizeof hops) != 0) {
        return socket_error("multicast options on", _local);
    }
    return {};
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
