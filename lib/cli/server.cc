#include "server.hh"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "protocol.hh"

namespace msecgw::cli {

namespace {

constexpr std::size_t max_conns = 16;
constexpr auto idle_limit = std::chrono::seconds(5); ///< a client that sends no full line in time is dropped

result<sockaddr_un> address(const std::string& path)
{
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof a.sun_path) {
        return error{errc::config_bad_value, "--cli-socket " + path + ": path empty or longer than " +
                                                 std::to_string(sizeof a.sun_path - 1) + " bytes"};
    }
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

/// A socket file nobody listens on (left by a killed msecgw) may be replaced.
bool is_stale_socket(const sockaddr_un& a)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    const bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return !live;
}

} // namespace

result<std::unique_ptr<socket_server>> socket_server::open(const std::string& path)
{
    auto a = address(path);
    if (!a) {
        return a.err();
    }
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return error{errc::io, "--cli-socket " + path + ": exists and is not a socket"};
        }
        if (!is_stale_socket(*a)) {
            return error{errc::io, "--cli-socket " + path + ": another process is listening on it"};
        }
        ::unlink(path.c_str());
    }
    std::unique_ptr<socket_server> s(new socket_server());
    s->_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->_fd < 0) {
        return error{errc::io, "--cli-socket " + path + ": socket: " + std::strerror(errno)};
    }
    const mode_t old = ::umask(0177); // the file is created 0600: the CLI changes SAs
    const int rc = ::bind(s->_fd, reinterpret_cast<const sockaddr*>(&*a), sizeof *a);
    const int bind_errno = errno;
    ::umask(old);
    if (rc != 0) {
        return error{errc::io, "--cli-socket " + path + ": bind: " + std::strerror(bind_errno)};
    }
    s->_path = path;
    ::chmod(path.c_str(), 0600);
    if (::listen(s->_fd, 8) != 0) {
        return error{errc::io, "--cli-socket " + path + ": listen: " + std::strerror(errno)};
    }
    return s;
}

socket_server::~socket_server()
{
    for (auto& c : _conns) {
        ::close(c.fd);
    }
    if (_fd >= 0) {
        ::close(_fd);
    }
    if (!_path.empty()) {
        ::unlink(_path.c_str());
    }
}

void socket_server::serve(conn& c, engine& e)
{
    char buf[4096];
    while (!c.answered) {
        const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
            c.in.append(buf, static_cast<std::size_t>(n));
            if (c.in.size() > protocol::max_request) {
                c.out = "2\nrequest longer than " + std::to_string(protocol::max_request) + " bytes\n";
                c.answered = true;
            }
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            c.answered = true; // peer gone (or half-closed without a line): nothing to answer
            c.out.clear();
            c.in.clear();
        }
        break;
    }
    if (!c.answered) {
        const auto nl = c.in.find('\n');
        if (nl == std::string::npos) {
            return;
        }
        std::vector<std::string> words;
        bool json = false;
        if (!protocol::parse_request(std::string_view(c.in).substr(0, nl), &words, &json)) {
            c.out = "2\nnot an msecgw-cli request\n";
        } else {
            const reply r = e.run(std::move(words), json);
            c.out = std::to_string(static_cast<int>(r.code)) + "\n" + r.text;
        }
        c.answered = true;
    }
    send_out(c);
}

void socket_server::send_out(conn& c)
{
    while (!c.out.empty()) {
        const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                return; // the rest on a later poll
            }
            c.out.clear(); // peer gone
            break;
        }
        c.out.erase(0, static_cast<std::size_t>(n));
    }
}

void socket_server::poll(engine& e)
{
    const auto now = std::chrono::steady_clock::now();
    while (_conns.size() < max_conns) {
        const int fd = ::accept4(_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            break;
        }
        _conns.push_back(conn{fd, {}, {}, false, now});
    }
    for (auto& c : _conns) {
        serve(c, e);
    }
    std::erase_if(_conns, [&](conn& c) {
        const bool done = (c.answered && c.out.empty()) || now - c.since > idle_limit;
        if (done) {
            ::close(c.fd);
        }
        return done;
    });
}

void socket_server::flush(std::chrono::milliseconds limit)
{
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!_conns.empty() && std::chrono::steady_clock::now() < end) {
        for (auto& c : _conns) {
            if (c.answered) {
                send_out(c);
            }
        }
        std::erase_if(_conns, [](conn& c) {
            const bool done = !c.answered || c.out.empty();
            if (done) {
                ::close(c.fd);
            }
            return done;
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

} // namespace msecgw::cli
