#pragma once
/// Non-blocking IPv4 UDP socket for IKE on kernel sockets (the control core polls it; it never
/// blocks). Addresses and ports are configurable so tests run on unprivileged loopback ports.

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>

#include "bytes.hh"
#include "common/result.hh"

namespace msecgw::gkm {

/// IPv4 address and port in host order.
struct endpoint {
    uint32_t address = 0x7f000001;  ///< 127.0.0.1
    uint16_t port = 500;

    static result<endpoint> parse(const std::string& address, uint16_t port);
    std::string to_string() const;
    bool operator==(const endpoint&) const = default;
};

struct received_datagram {
    endpoint source;
    bytes data;
};

class udp_socket {
public:
    /// Binds to local (port 0 picks a free port).
    static result<udp_socket> open(const endpoint& local);
    /// A receiver for an IPv4 multicast group: bound to group (SO_REUSEADDR, so several members
    /// on one host share the port) and joined (IP_ADD_MEMBERSHIP) on the interface with address
    /// interface_address (0: the kernel's choice).
    static result<udp_socket> open_multicast(const endpoint& group, uint32_t interface_address);
    static bool is_multicast(uint32_t address) { return (address >> 28) == 0xe; }

    /// Options for datagrams this socket sends to multicast groups: the outgoing interface (its
    /// address; 0 leaves the kernel's choice), TTL, and loopback to local members on.
    result<void> set_multicast_sender(uint32_t interface_address, uint8_t ttl) const;

    udp_socket(udp_socket&& other) noexcept;
    udp_socket& operator=(udp_socket&& other) noexcept;
    udp_socket(const udp_socket&) = delete;
    udp_socket& operator=(const udp_socket&) = delete;
    ~udp_socket();

    int fd() const { return _fd; }
    const endpoint& local() const { return _local; }
    /// Sends one datagram; false if the kernel refused it (the caller's retransmission covers it).
    bool send_to(const endpoint& to, byte_view data) const;
    /// One pending datagram, or nothing when the queue is empty.
    std::optional<received_datagram> receive() const;

private:
    udp_socket(int fd, endpoint local) : _fd(fd), _local(local) {}
    int _fd = -1;
    endpoint _local;
};

} // namespace msecgw::gkm
