#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "dataplane/dp_state.hh"
#include "metrics/families.hh"
#include "metrics/metrics.hh"
#include "../common/free_port.hh"

using namespace msecgw;
using metrics::parse_endpoint;

namespace {

/// The value of the one series of `family` whose labels include all of `want`.
double value_of(const std::vector<prometheus::MetricFamily>& fams, const std::string& family,
                const std::map<std::string, std::string>& want)
{
    for (const auto& f : fams) {
        if (f.name != family) {
            continue;
        }
        for (const auto& m : f.metric) {
            std::size_t hits = 0;
            for (const auto& l : m.label) {
                auto it = want.find(l.name);
                hits += it != want.end() && it->second == l.value;
            }
            if (hits == want.size()) {
                return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
            }
        }
    }
    ADD_FAILURE() << "no series " << family;
    return -1;
}

metrics::sample two_lcores()
{
    metrics::sample s;
    stats::port_totals p0;
    p0.port = 0;
    p0.side = "clear";
    p0.driver = "net_pcap";
    p0.rx_pkts = 10;
    p0.rx_bytes = 1000;
    p0.nic.imissed = 3;
    stats::port_totals p1 = p0;
    p1.port = 1;
    p1.side = "protected";
    p1.tx_pkts = 8;
    s.totals.ports = {p0, p1};
    dataplane::lcore_stats a{}, b{};
    a.drops[static_cast<std::size_t>(drop_reason::replay)] = 2;
    a.sealed = 5;
    a.busy_polls = 7;
    a.idle_polls = 100;
    a.rx_pkts[0] = 6;
    a.rx_pkts[1] = 1;
    b.drops[static_cast<std::size_t>(drop_reason::policy_no_match)] = 4;
    s.totals.lcores = {{1, a}, {3, b}};
    s.sas = {{"g1-out", 0x1001, config::direction::out, 5, 500}, {"g1-in", 0x1001, config::direction::in, 0, 0}};
    return s;
}

const metrics::process_info info{"9.9.9", "DPDK 22.11", 1700000000.5};

} // namespace

TEST(metrics_endpoint, parses_ipv4_localhost_and_any)
{
    auto a = parse_endpoint("127.0.0.1:9464");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->addr, "127.0.0.1");
    EXPECT_EQ(a->port, 9464);
    EXPECT_EQ(a->to_string(), "127.0.0.1:9464");
    EXPECT_EQ(parse_endpoint("localhost:1")->addr, "127.0.0.1");
    EXPECT_EQ(parse_endpoint(":65535")->to_string(), "0.0.0.0:65535");
}

TEST(metrics_endpoint, refuses_bad_values_with_one_line)
{
    for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999999",
                            "127.0.0.1:-1", "127.0.0.1:9x", "host.example:80", "[::1]:9464", "::1:9464", "1.2.3:80"}) {
        auto r = parse_endpoint(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.err().detail.find("--metrics"), std::string::npos) << r.err().detail;
        EXPECT_EQ(r.err().detail.find('\n'), std::string::npos) << r.err().detail;
    }
    EXPECT_NE(parse_endpoint("1.2.3.4:0").err().detail.find("out of range"), std::string::npos);
    EXPECT_NE(parse_endpoint("1.2.3.4").err().detail.find("no port"), std::string::npos);
}

TEST(metrics_endpoint, address_in_use_is_reported_before_start)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), len), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    const metrics::endpoint ep{"127.0.0.1", ntohs(sa.sin_port)};
    auto r = metrics::check_bindable(ep);
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().detail.find("in use"), std::string::npos) << r.err().detail;
    EXPECT_FALSE(metrics::exporter::start(ep, info));
    ::close(fd);
    EXPECT_TRUE(metrics::check_bindable(ep));
}

TEST(metrics_families, names_types_and_every_drop_reason_per_lcore)
{
    const auto s = two_lcores();
    const auto fams = metrics::families(&s, info);
    std::set<std::string> names;
    for (const auto& f : fams) {
        EXPECT_TRUE(names.insert(f.name).second) << f.name << " twice";
        EXPECT_EQ(f.name.rfind("msecgw_", 0), 0u) << f.name;
        EXPECT_FALSE(f.help.empty()) << f.name;
        const bool total = f.name.size() > 6 && f.name.compare(f.name.size() - 6, 6, "_total") == 0;
        EXPECT_EQ(total, f.type == prometheus::MetricType::Counter) << f.name;
    }
    for (const auto& row : drop_table) {
        const std::string reason(row.label);
        const double replay = row.reason == drop_reason::replay ? 2 : 0;
        const double no_match = row.reason == drop_reason::policy_no_match ? 4 : 0;
        EXPECT_EQ(value_of(fams, "msecgw_drops_total", {{"lcore", "1"}, {"reason", reason}}), replay);
        EXPECT_EQ(value_of(fams, "msecgw_drops_total", {{"lcore", "3"}, {"reason", reason}}), no_match);
    }
    EXPECT_EQ(value_of(fams, "msecgw_up", {}), 1);
    EXPECT_EQ(value_of(fams, "msecgw_build_info", {{"version", "9.9.9"}, {"dpdk", "DPDK 22.11"}}), 1);
    EXPECT_EQ(value_of(fams, "msecgw_start_time_seconds", {}), 1700000000.5);
    EXPECT_EQ(value_of(fams, "msecgw_rx_packets_total", {{"port", "0"}, {"side", "clear"}}), 10);
    EXPECT_EQ(value_of(fams, "msecgw_rx_bytes_total", {{"port", "0"}}), 1000);
    EXPECT_EQ(value_of(fams, "msecgw_tx_packets_total", {{"port", "1"}, {"side", "protected"}}), 8);
    EXPECT_EQ(value_of(fams, "msecgw_nic_imissed_total", {{"port", "1"}}), 3);
    EXPECT_EQ(value_of(fams, "msecgw_port_info", {{"port", "1"}, {"driver", "net_pcap"}}), 1);
    EXPECT_EQ(value_of(fams, "msecgw_sealed_packets_total", {{"lcore", "1"}}), 5);
    EXPECT_EQ(value_of(fams, "msecgw_sealed_packets_total", {{"lcore", "3"}}), 0);
    EXPECT_EQ(value_of(fams, "msecgw_lcore_rx_packets_total", {{"lcore", "1"}}), 7);
    EXPECT_EQ(value_of(fams, "msecgw_lcore_polls_total", {{"lcore", "1"}, {"state", "busy"}}), 7);
    EXPECT_EQ(value_of(fams, "msecgw_lcore_polls_total", {{"lcore", "1"}, {"state", "idle"}}), 100);
    EXPECT_EQ(value_of(fams, "msecgw_sa_packets_total", {{"sa", "g1-out"}, {"spi", "0x00001001"}, {"dir", "out"}}), 5);
    EXPECT_EQ(value_of(fams, "msecgw_sa_bytes_total", {{"sa", "g1-out"}}), 500);
    EXPECT_EQ(value_of(fams, "msecgw_sa_packets_total", {{"sa", "g1-in"}, {"dir", "in"}}), 0);
}

TEST(metrics_families, unanswered_scrape_reports_only_process_facts)
{
    const auto fams = metrics::families(nullptr, info);
    ASSERT_EQ(fams.size(), 3u);
    EXPECT_EQ(value_of(fams, "msecgw_up", {}), 0);
    const std::string text = prometheus::TextSerializer().Serialize(fams);
    EXPECT_NE(text.find("# TYPE msecgw_up gauge\nmsecgw_up 0\n"), std::string::npos) << text;
}

TEST(metrics_sa, samples_sum_every_lane_of_every_sa)
{
    dataplane::dp_state st;
    auto out = std::make_shared<sa::out_sa>();
    out->name = "o";
    out->spi = 0xabcd;
    out->lanes[0].pkts = 3;
    out->lanes[0].bytes = 30;
    out->lanes[63].pkts = 4;
    out->lanes[63].bytes = 40;
    auto in = std::make_shared<sa::in_sa>();
    in->name = "i";
    in->spi = 7;
    in->lanes[5].pkts = 1;
    in->lanes[5].bytes = 9;
    st.out_sas.push_back(out);
    st.in_sas.push_back(in);
    const auto s = metrics::sa_samples(st);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].name, "o");
    EXPECT_EQ(s[0].dir, config::direction::out);
    EXPECT_EQ(s[0].packets, 7u);
    EXPECT_EQ(s[0].bytes, 70u);
    EXPECT_EQ(s[1].name, "i");
    EXPECT_EQ(s[1].spi, 7u);
    EXPECT_EQ(s[1].packets, 1u);
    EXPECT_EQ(s[1].bytes, 9u);
}

namespace {

/// GET /metrics over loopback: the body.
std::string http_get(uint16_t port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return "connect failed";
    }
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    (void)!::write(fd, req.data(), req.size());
    std::string resp;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        resp.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return resp;
}

uint16_t free_port() { return msecgw::test::free_loopback_port(SOCK_STREAM); }

} // namespace

TEST(metrics_exporter, scrape_is_answered_by_the_serving_thread_only)
{
    const metrics::endpoint ep{"127.0.0.1", free_port()};
    auto e = metrics::exporter::start(ep, info);
    ASSERT_TRUE(e) << e.err().detail;
    auto scrape = std::async(std::launch::async, [&] { return http_get(ep.port); });
    int takes = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (scrape.wait_for(std::chrono::milliseconds(2)) != std::future_status::ready &&
           std::chrono::steady_clock::now() < deadline) {
        (*e)->serve([&] {
            ++takes;
            return two_lcores();
        });
    }
    const std::string body = scrape.get();
    EXPECT_EQ(takes, 1);
    EXPECT_NE(body.find("200 OK"), std::string::npos) << body;
    EXPECT_NE(body.find("\nmsecgw_up 1\n"), std::string::npos) << body;
    EXPECT_NE(body.find("msecgw_drops_total{lcore=\"1\",reason=\"replay\"} 2\n"), std::string::npos) << body;
    // nobody serves: the scrape gives up after its timeout and says so
    const std::string lonely = http_get(ep.port);
    EXPECT_NE(lonely.find("\nmsecgw_up 0\n"), std::string::npos) << lonely;
    EXPECT_EQ(lonely.find("msecgw_drops_total"), std::string::npos);
}
