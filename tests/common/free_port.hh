#pragma once
/// A port on 127.0.0.1 that was free a moment ago, for a server a test must name before it starts.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace msecgw::test {

/// `type`: SOCK_STREAM or SOCK_DGRAM. 0 when the kernel gave none (the test fails on it later).
inline uint16_t free_loopback_port(int type)
{
    const int fd = ::socket(AF_INET, type, 0);
    if (fd < 0) {
        return 0;
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0;
    ::close(fd);
    return ok ? ntohs(sa.sin_port) : 0;
}

} // namespace msecgw::test
