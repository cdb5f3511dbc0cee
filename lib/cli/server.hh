#pragma once
/// `--cli-socket PATH`: the CLI's commands over a unix stream socket (mode 0600), served from the
/// control loop without blocking: poll() accepts, reads and writes only what is ready.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "commands.hh"

namespace msecgw::cli {

class socket_server {
public:
    /// Listens on `path`; a stale socket file is replaced, a live one (another msecgw) or any
    /// other file is an error naming --cli-socket.
    static result<std::unique_ptr<socket_server>> open(const std::string& path);
    ~socket_server(); ///< closes every connection and removes the socket file
    socket_server(const socket_server&) = delete;
    socket_server& operator=(const socket_server&) = delete;

    /// Control loop, every few milliseconds: serve what is ready, never wait.
    void poll(engine& e);
    /// At exit: give pending replies (e.g. to `quit`) up to `limit` to leave.
    void flush(std::chrono::milliseconds limit);

private:
    struct conn {
        int fd = -1;
        std::string in, out;
        bool answered = false;
        std::chrono::steady_clock::time_point since;
    };
    socket_server() = default;
    void serve(conn& c, engine& e);
    static void send_out(conn& c);

    std::string _path;
    int _fd = -1;
    std::vector<conn> _conns;
};

} // namespace msecgw::cli
