#include "options.hh"

#include <charconv>
#include <cmath>
#include <string_view>

namespace msecgw::app {

const char* usage()
{
    return "usage: msecgw [EAL options] -- [--config FILE] [--keylog FILE] [--duration SECONDS]\n"
           "                             [--stats-json FILE] [--metrics ADDR:PORT]\n"
           "                             [--cli-socket PATH] [-i|--interactive]\n"
           "       msecgw --gcks-only --config FILE [--duration SECONDS] [--metrics ADDR:PORT]\n"
           "  --config FILE       gateway configuration (YAML); default: the embedded demo config\n"
           "  --keylog FILE       write Wireshark esp_sa lines for every SA (contains keys!)\n"
           "  --duration SECONDS  run this long, drain, and exit 0 (default: until SIGINT/SIGTERM)\n"
           "  --stats-json FILE   write run totals (packets, bytes, drops by reason) at exit\n"
           "  --metrics ADDR:PORT serve Prometheus metrics on http://ADDR:PORT/metrics\n"
           "                      (ADDR: IPv4 address, localhost, or empty for all addresses)\n"
           "  --cli-socket PATH   serve CLI commands on a unix socket (mode 0600) for msecgw-cli\n"
           "  -i, --interactive   CLI prompt on this terminal (TAB completes, help lists commands)\n"
           "  --gcks-only         run only the configuration's key_server (G-IKEv2 GCKS): no DPDK, no ports\n";
}

namespace {

result<double> parse_seconds(std::string_view v)
{
    double d = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
    if (ec != std::errc() || ptr != v.data() + v.size() || !std::isfinite(d) || d <= 0) {
        return error{errc::config_bad_value, "--duration: expected a positive number of seconds, got '" +
                                                 std::string(v) + "'"};
    }
    return d;
}

} // namespace

result<options> parse_options(int argc, char** argv)
{
    options o;
    for (int i = 0; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            o.help = true;
            continue;
        }
        if (a == "-i" || a == "--interactive") {
            o.interactive = true;
            continue;
        }
        if (a == "--gcks-only") {
            o.gcks_only = true;
            continue;
        }
        std::string* target = a == "--config"       ? &o.config
                              : a == "--keylog"     ? &o.keylog
                              : a == "--stats-json" ? &o.stats_json
                              : a == "--metrics"    ? &o.metrics
                              : a == "--cli-socket" ? &o.cli_socket
                                                    : nullptr;
        if (target == nullptr && a != "--duration") {
            return error{errc::config_bad_value, "unknown option '" + std::string(a) + "' (see --help)"};
        }
        if (i + 1 >= argc) {
            return error{errc::config_missing_key, std::string(a) + " needs a value"};
        }
        const std::string_view v = argv[++i];
        if (target != nullptr) {
            *target = std::string(v);
            continue;
        }
        auto d = parse_seconds(v);
        if (!d) {
            return d.err();
        }
        o.duration = *d;
    }
    return o;
}

} // namespace msecgw::app
