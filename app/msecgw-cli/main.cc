// msecgw-cli: runs one CLI command on a running msecgw through its --cli-socket.
// Exit codes: 0 the command succeeded, 1 it failed, 2 usage or connection error.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/protocol.hh"

namespace {

constexpr int timeout_ms = 30000; // a reload waits for an RCU grace period: milliseconds, not seconds

const char* usage_text =
    "usage: msecgw-cli [--socket PATH] [--json] COMMAND [ARGS...]\n"
    "  --socket PATH  msecgw's --cli-socket (default: $MSECGW_CLI_SOCKET or /run/msecgw/cli.sock)\n"
    "  --json         machine-readable output\n"
    "  msecgw-cli help  lists the commands, e.g.: show stats, show sa, clear stats, quit\n"
    "exit status: 0 ok, 1 the command failed, 2 usage or connection error\n";

int usage_error(const std::string& what)
{
    std::fprintf(stderr, "msecgw-cli: %s\n%s", what.c_str(), usage_text);
    return 2;
}

int conn_error(const std::string& path, const std::string& what)
{
    std::fprintf(stderr, "msecgw-cli: %s: %s\n", path.c_str(), what.c_str());
    return 2;
}

bool send_all(int fd, const std::string& s)
{
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    const char* env = std::getenv("MSECGW_CLI_SOCKET");
    std::string path = env != nullptr && *env != '\0' ? env : msecgw::cli::protocol::default_socket;
    bool json = false;
    std::vector<std::string> words;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (words.empty() && (a == "-h" || a == "--help")) {
            std::fputs(usage_text, stdout);
            return 0;
        }
        if (words.empty() && (a == "--socket" || a == "-s")) {
            if (i + 1 >= argc) {
                return usage_error("--socket needs a value");
            }
            path = argv[++i];
            continue;
        }
        if (a == "--json") {
            json = true;
            continue;
        }
        if (words.empty() && a.size() > 1 && a[0] == '-') {
            return usage_error("unknown option '" + std::string(a) + "'");
        }
        if (a.find_first_of("\t\n") != std::string_view::npos) {
            return usage_error("arguments may not contain tabs or newlines");
        }
        words.emplace_back(a);
    }
    if (words.empty()) {
        return usage_error("no command");
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        return conn_error(path, "socket path too long");
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return conn_error(path, std::string("cannot connect: ") + std::strerror(errno) + " (is msecgw running with --cli-socket?)");
    }
    if (!send_all(fd, msecgw::cli::protocol::request(words, json))) {
        return conn_error(path, std::string("send: ") + std::strerror(errno));
    }
    std::string answer;
    char buf[8192];
    while (true) {
        pollfd p{fd, POLLIN, 0};
        const int pr = ::poll(&p, 1, timeout_ms);
        if (pr == 0) {
            return conn_error(path, "no answer in " + std::to_string(timeout_ms / 1000) + " s");
        }
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        answer.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    const auto nl = answer.find('\n');
    if (nl == std::string::npos || nl == 0 || nl > 2 || answer.find_first_not_of("012", 0) < nl) {
        return conn_error(path, answer.empty() ? "connection closed without an answer (gateway exiting?)"
                                               : "not an msecgw answer");
    }
    const int code = std::atoi(answer.substr(0, nl).c_str());
    const std::string text = answer.substr(nl + 1);
    std::fputs(text.c_str(), code == 0 ? stdout : stderr);
    return code;
}
