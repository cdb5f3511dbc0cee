#pragma once
// msecgw's own command line (after EAL's `--`), DESIGN.md §5 contract.

#include <string>

#include "common/result.hh"

namespace msecgw::app {

struct options {
    std::string config;      ///< empty = the embedded default configuration
    std::string keylog;      ///< Wireshark esp_sa file to write (only when asked)
    double duration = 0;     ///< seconds; 0 = until SIGINT/SIGTERM
    std::string stats_json;  ///< where to write run totals at exit
    std::string metrics;     ///< ADDR:PORT to serve Prometheus metrics on; empty = off
    std::string cli_socket;  ///< unix socket for msecgw-cli; empty = off
    bool interactive = false;///< CLI prompt on the terminal
    bool gcks_only = false;  ///< run only the key server of the configuration (no EAL, no ports)
    bool help = false;
};

/// Parses the application arguments (everything after `--`).
result<options> parse_options(int argc, char** argv);

const char* usage();

} // namespace msecgw::app
