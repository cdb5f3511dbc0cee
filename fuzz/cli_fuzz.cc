// The CLI: the socket protocol's request parser, then the command engine (show / clear / set /
// add / del / rekey / help and their argument parsing) against a stub gateway whose apply()
// takes any configuration the engine produced. Input: a request line ("MSECGW1\t0\tshow\tsa"),
// or, when it is not one, words separated by blanks.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include "cli/commands.hh"
#include "cli/protocol.hh"

#include <rte_log.h>

using namespace msecgw;

namespace {

const char* const base_yaml = R"(state_dir: /tmp/msecgw-fuzz-cli
ports: [{port: 0, side: clear}, {port: 1, side: protected}]
sas:
  - {name: o4, dir: out, spi: 0x0000a001, aead: aes-128-gcm, key: "0x101112131415161718191a1b1c1d1e1fcafebabe"}
  - {name: i4, dir: in, spi: 0x0000a001, dst: 239.1.0.0/16, aead: aes-128-gcm, key: "0x101112131415161718191a1b1c1d1e1fcafebabe"}
policies:
  - {dir: out, dst: 239.1.0.0/16, action: protect, sa: o4}
  - {dir: in, dst: 239.1.0.0/16, proto: udp, dport: "5000-5999", action: protect, sa: i4}
  - {dir: in, dst: 239.3.0.0/16, action: bypass}
)";

const config::gateway_cfg& base()
{
    static const config::gateway_cfg cfg = [] {
        auto r = config::load_string(base_yaml, "cli.yaml");
        if (!r) {
            std::abort();
        }
        return std::move(r.value());
    }();
    return cfg;
}

class stub_backend : public cli::backend {
public:
    stub_backend() : _cfg(base())
    {
        _totals.ports.push_back({0, "clear", "net_null", 10, 1000, 9, 900, {}});
        _totals.ports.push_back({1, "protected", "net_null", 9, 1200, 10, 1300, {}});
        _totals.lcores.push_back({1, dataplane::lcore_stats{}});
    }
    stats::totals totals() override { return _totals; }
    const config::gateway_cfg& running() const override { return _cfg; }
    std::vector<cli::sa_counters> sas() override
    {
        std::vector<cli::sa_counters> out;
        uint32_t uid = 1;
        for (const auto& sa : _cfg.sas) {
            out.push_back({uid++, sa.name, sa.dir, 5, 500, "active"});
        }
        return out;
    }
    result<void> apply(config::gateway_cfg cfg) override
    {
        _cfg = std::move(cfg);
        return {};
    }
    void quit() override {}
    std::vector<cli::group_info> groups() const override
    {
        cli::group_info g;
        g.name = "g1";
        g.id = 1;
        g.member_state = "registered";
        g.in_spis = {0x1001};
        return {g};
    }

private:
    config::gateway_cfg _cfg;
    stats::totals _totals;
};

/// A stdio stream that discards what is written to it, without a system call.
ssize_t discard(void*, const char*, size_t n)
{
    return static_cast<ssize_t>(n);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    // The engine logs every command at debug level, and an input's `set log msecgw.* debug` turns
    // that on for every later input: rte_log still formats each message (so the format strings are
    // fuzzed too) but writes it nowhere instead of one write(2) per command.
    rte_log_set_global_level(RTE_LOG_ERR);
    if (std::FILE* sink = fopencookie(nullptr, "w", cookie_io_functions_t{nullptr, discard, nullptr, nullptr})) {
        rte_openlog_stream(sink);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> words;
    bool json = false;
    if (!cli::protocol::parse_request(text.substr(0, text.find('\n')), &words, &json)) {
        std::istringstream in{std::string(text)};
        for (std::string w; in >> w;) {
            words.push_back(w);
        }
    }
    stub_backend b;
    cli::engine e(b);
    (void)e.run(words, json);
    (void)e.run({"show", "sa"}, json); // the state the command left must still print
    (void)e.run({"show", "policy"}, json);
    return 0;
}
