// [E1] G-IKEv2 benchmark: registrations per second per core (IKE_SA_INIT with ECDH + GSA_AUTH with
// PSK), GCKS and group members in this one thread over loopback UDP, next to the raw cost of the
// public-key operations measured in the same run; and GSA_REKEY fan-out time to N members: a TEK
// rekey by unicast and by multicast (127.0.0.1 as IP_MULTICAST_IF), and in a key tree group
// ([E2]) one eviction: membership rekey (LKH path keys) + TEK rekey under the new KEK, from
// evict() until every remaining member applied both. A benchmark, not a test: nothing here is asserted.
//
//   gkm_bench [--registrations N] [--concurrency C] [--fanout 10,100,1000] [--group 19|31] [--state DIR]

#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gkm/gkm.hh"

using namespace msecgw;
using namespace msecgw::gkm;

namespace {

struct options {
    int registrations = 4000;
    int concurrency = 64;
    std::vector<int> fanout{10, 100, 1000};
    dh_group group = dh_group::ecp256;
    std::string state_dir;  ///< non-empty: the GCKS keeps its state in SQLite there
};

/// Wall and CPU seconds of this process (one thread: CPU seconds are seconds of one core).
struct stopwatch {
    clock::time_point wall = clock::now();
    double cpu0 = cpu_now();

    static double cpu_now()
    {
        timespec ts{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
    }
    double wall_s() const { return std::chrono::duration<double>(clock::now() - wall).count(); }
    double cpu_s() const { return cpu_now() - cpu0; }
};

bytes psk_of(const std::string& id)
{
    return bytes(id.begin(), id.end());  // benchmark keys only
}

std::string member_id(int i)
{
    return "gm-" + std::to_string(i);
}

traffic_selector ipv4_selector(uint32_t first, uint32_t last)
{
    traffic_selector ts;
    ts.ts_type = 7;
    auto address = [](uint32_t a) { return bytes{uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)}; };
    ts.start_address = address(first);
    ts.end_address = address(last);
    return ts;
}

/// Delivery of GSA_REKEY in the fan-out runs.
enum class delivery { unicast, multicast };
constexpr endpoint bench_rekey_address{0xeffe4d02, 47502};  // 239.254.77.2

gcks_config server_config(const options& o, int identities, delivery d = delivery::unicast, bool key_tree = false)
{
    gcks_config c;
    c.listen = endpoint{0x7f000001, 0};
    group_config g;
    g.group_id = 1;
    g.source = ipv4_selector(0, 0xffffffff);
    g.destination = ipv4_selector(0xef010101, 0xef010101);
    g.sender_id_bits = 24;
    for (int i = 0; i < identities; ++i) {
        c.peers.push_back(psk_identity{member_id(i), psk_of(member_id(i))});
        g.members.push_back(member_id(i));
        g.senders.push_back(member_id(i));
    }
    if (d == delivery::multicast) {
        g.rekey_address = bench_rekey_address;
        g.rekey_interface = 0x7f000001;
    }
    if (key_tree) {
        g.key_tree = true;
        g.lkh_max_members = uint32_t(identities);
        g.rekey_batch_ms = 100;  // registrations in batches; the evictions are committed at once (gcks_skew)
    }
    c.groups.push_back(std::move(g));
    if (!o.state_dir.empty()) {
        std::filesystem::create_directories(o.state_dir);
        c.state_path = o.state_dir + "/gcks.db";
        c.storage_key_path = o.state_dir + "/storage.key";
        std::ofstream(c.storage_key_path, std::ios::trunc) << to_hex(random_bytes(32));
        std::filesystem::permissions(c.storage_key_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    return c;
}

/// with_rekey_key: give the member the GCKS's public key (parsing it is a one-time cost of a
/// member that the registration figure leaves out; the fan-out needs it).
std::unique_ptr<gkm::group_member> make_member(const options& o, const gcks& server, int i, bool with_rekey_key)
{
    member_config c;
    c.gcks = server.local();
    c.identity = member_id(i);
    c.psk = psk_of(c.identity);
    c.group_id = 1;
    c.group = o.group;
    if (with_rekey_key) {
        c.gcks_public_key = server.rekey_public_key();
    }
    c.reregister_on_gap = false;  // an evicted member stays out (the fan-out runs evict)
    result<std::unique_ptr<gkm::group_member>> m = gkm::group_member::create(std::move(c));
    if (!m) {
        std::fprintf(stderr, "gkm_bench: %s\n", m.err().detail.c_str());
        std::exit(1);
    }
    return std::move(*m);
}

/// CPU seconds spent inside gcks::tick: the key server's share of the work (CPU, not wall time,
/// so that preemption on a shared machine does not count).
double gcks_busy = 0;
/// Added to the GCKS's clock: lets a fan-out run commit a key tree batch at the next tick.
clock::duration gcks_skew{};

/// Polls all sockets and ticks everyone until done() (or a round limit, for a lost datagram).
template <class Done>
void drive(gcks& server, std::vector<std::unique_ptr<gkm::group_member>>& members, Done done)
{
    std::vector<pollfd> fds;
    for (int round = 0; round < 100000 && !done(); ++round) {
        fds.assign(1, pollfd{server.fd(), POLLIN, 0});
        for (auto& m : members) {
            fds.push_back({m->fd(), POLLIN, 0});
            if (m->rekey_fd() >= 0) {
                fds.push_back({m->rekey_fd(), POLLIN, 0});
            }
        }
        ::poll(fds.data(), fds.size(), 5);
        const clock::time_point now = clock::now();
        const double cpu0 = stopwatch::cpu_now();
        server.tick(now + gcks_skew);
        gcks_busy += stopwatch::cpu_now() - cpu0;
        for (auto& m : members) {
            m->tick(now);
        }
    }
}

bool settled(const std::vector<std::unique_ptr<gkm::group_member>>& members)
{
    return std::none_of(members.begin(), members.end(), [](const auto& m) {
        return m->state() == member_state::ike_sa_init_sent || m->state() == member_state::gsa_auth_sent;
    });
}

/// Microseconds per operation of the public-key work one registration and one rekey need.
struct raw_costs {
    double ecdh_us = 0;    ///< one key generation + one shared secret (each side does this once)
    double sign_us = 0;    ///< one ECDSA P-256 signature (GCKS, per rekey)
    double verify_us = 0;  ///< one verification (each member, per rekey)
};

raw_costs measure_raw(dh_group group, int n)
{
    raw_costs c;
    result<ecdh_key> peer = ecdh_key::generate(group);
    stopwatch t;
    for (int i = 0; i < n; ++i) {
        result<ecdh_key> k = ecdh_key::generate(group);
        result<secret> s = k->shared_secret(peer->public_value());
        if (!s) {
            std::exit(1);
        }
    }
    c.ecdh_us = t.cpu_s() / n * 1e6;
    result<signing_key> key = signing_key::generate();
    const bytes message = random_bytes(200);
    bytes sig;
    t = stopwatch{};
    for (int i = 0; i < n; ++i) {
        sig = *key->sign(message);
    }
    c.sign_us = t.cpu_s() / n * 1e6;
    result<verify_key> public_key = verify_key::parse(key->public_key_der());
    t = stopwatch{};
    for (int i = 0; i < n; ++i) {
        if (!public_key->verify(message, sig)) {
            std::exit(1);
        }
    }
    c.verify_us = t.cpu_s() / n * 1e6;
    return c;
}

void bench_registrations(const options& o, const raw_costs& raw)
{
    result<std::unique_ptr<gcks>> server = gcks::create(server_config(o, o.registrations));
    if (!server) {
        std::fprintf(stderr, "gkm_bench: %s\n", server.err().detail.c_str());
        std::exit(1);
    }
    int done = 0;
    int failed = 0;
    gcks_busy = 0;
    stopwatch t;
    while (done + failed < o.registrations) {
        std::vector<std::unique_ptr<gkm::group_member>> batch;
        for (int i = 0; i < o.concurrency && done + failed + i < o.registrations; ++i) {
            batch.push_back(make_member(o, **server, done + failed + i, false));
        }
        for (auto& m : batch) {
            m->start(clock::now());
        }
        drive(**server, batch, [&] { return settled(batch); });
        for (auto& m : batch) {
            (m->state() == member_state::registered ? done : failed) += 1;
        }
    }
    const double wall = t.wall_s();
    const double cpu = t.cpu_s();
    const double per_reg_us = cpu / done * 1e6;
    std::printf("registrations: %d ok, %d failed, group %u, %d at a time%s\n", done, failed, unsigned(o.group),
                o.concurrency, o.state_dir.empty() ? "" : ", GCKS state in SQLite");
    std::printf("  %.0f registrations/s per core (CPU %.2f s, wall %.2f s: %.0f/s)\n", done / cpu, cpu, wall, done / wall);
    std::printf("  %.1f us CPU per registration, both sides; raw ECDH (keygen + derive) x2 = %.1f us: ratio %.2f\n",
                per_reg_us, 2 * raw.ecdh_us, per_reg_us / (2 * raw.ecdh_us));
    const double gcks_us = gcks_busy * 1e6 / done;
    std::printf("  GCKS share: %.1f us per registration = %.0f registrations/s per core for the key server alone;"
                " its raw ECDH %.1f us: ratio %.2f\n",
                gcks_us, 1e6 / gcks_us, raw.ecdh_us, gcks_us / raw.ecdh_us);
    std::printf("  GCKS %zu sessions held at the end (%zu half-open)\n", (*server)->sessions(),
                (*server)->half_open_sessions());
}

void bench_fanout(const options& o, int n, delivery d)
{
    options plain = o;
    plain.state_dir.clear();
    result<std::unique_ptr<gcks>> server = gcks::create(server_config(plain, n, d));
    std::vector<std::unique_ptr<gkm::group_member>> members;
    for (int i = 0; i < n; ++i) {
        members.push_back(make_member(o, **server, i, true));
        members.back()->start(clock::now());
        if (members.size() % 64 == 0 || i == n - 1) {
            drive(**server, members, [&] { return settled(members); });
        }
    }
    const auto accepted = [&] {
        uint64_t sum = 0;
        for (auto& m : members) {
            sum += m->counters().rekeys_accepted;
        }
        return sum;
    };
    double send_us = 0;
    double all_us = 0;
    constexpr int repeats = 5;
    for (int r = 0; r < repeats; ++r) {
        const uint64_t before = accepted();
        const clock::time_point t0 = clock::now();
        if (!(*server)->rekey(1)) {
            std::exit(1);
        }
        const clock::time_point sent = clock::now();
        drive(**server, members, [&] { return accepted() == before + uint64_t(n); });
        const clock::time_point t1 = clock::now();
        send_us += std::chrono::duration<double, std::micro>(sent - t0).count();
        all_us += std::chrono::duration<double, std::micro>(t1 - t0).count();
    }
    std::printf("  %s fan-out to %5d members: GCKS rekey (sign, seal, %d sends) %8.1f us; all members installed %9.1f us"
                " (%.1f us/member, members verify in this same thread)\n",
                d == delivery::multicast ? "multicast" : "unicast  ", n, d == delivery::multicast ? 1 : n,
                send_us / repeats, all_us / repeats, all_us / repeats / n);
}

/// [E2] Key tree group: one eviction at a time, from evict() until every remaining member applied
/// the membership rekey and installed the TEK that follows it.
void bench_tree_fanout(const options& o, int n, delivery d)
{
    options plain = o;
    plain.state_dir.clear();
    gcks_skew = {};
    result<std::unique_ptr<gcks>> server = gcks::create(server_config(plain, n, d, true));
    std::vector<std::unique_ptr<gkm::group_member>> members;
    for (int i = 0; i < n; ++i) {
        members.push_back(make_member(o, **server, i, true));
        members.back()->start(clock::now());
        if (members.size() % 256 == 0 || i == n - 1) {
            drive(**server, members, [&] { return settled(members); });
        }
    }
    constexpr int repeats = 5;
    double all_us = 0;
    double gcks_cpu_us = 0;
    const uint64_t parts0 = (*server)->counters().membership_rekey_parts;
    const uint64_t sent0 = (*server)->counters().rekeys_sent;
    for (int r = 0; r < repeats; ++r) {
        const size_t gone = members.size() - 1;  // the newest member leaves
        std::vector<uint64_t> before;
        for (auto& m : members) {
            before.push_back(m->counters().key_tree_rekeys);
        }
        const auto applied = [&] {
            const uint32_t spi = (*server)->status(1)->tek_spi;
            for (size_t i = 0; i < gone; ++i) {
                const gkm::group_membership* ms = members[i]->membership();
                if (members[i]->counters().key_tree_rekeys != before[i] + 1 || ms == nullptr || ms->teks.front().spi != spi) {
                    return false;
                }
            }
            return true;
        };
        gcks_busy = 0;
        const clock::time_point t0 = clock::now();
        (*server)->evict(member_id(int(gone)));
        gcks_skew += std::chrono::seconds(1);  // the batch (due 100 ms after the GCKS's last tick) is due now
        const double cpu0 = stopwatch::cpu_now();
        (*server)->tick(clock::now() + gcks_skew);  // commits and sends
        gcks_busy += stopwatch::cpu_now() - cpu0;
        drive(**server, members, applied);
        all_us += std::chrono::duration<double, std::micro>(clock::now() - t0).count();
        gcks_cpu_us += gcks_busy * 1e6;
        members.pop_back();
    }
    const uint64_t parts = (*server)->counters().membership_rekey_parts - parts0;
    const uint64_t datagrams = (*server)->counters().rekeys_sent - sent0;
    std::printf("  %s eviction in a key tree of %5d: %.1f parts + 1 TEK rekey, %.0f datagrams sent;"
                " GCKS CPU %8.1f us; all members applied both %9.1f us\n",
                d == delivery::multicast ? "multicast" : "unicast  ", n, double(parts) / repeats,
                double(datagrams) / repeats, gcks_cpu_us / repeats, all_us / repeats);
}

options parse(int argc, char** argv)
{
    options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const char* v = argv[i + 1];
        if (k == "--registrations") {
            o.registrations = std::atoi(v);
        } else if (k == "--concurrency") {
            o.concurrency = std::max(1, std::atoi(v));
        } else if (k == "--group") {
            o.group = std::atoi(v) == 31 ? dh_group::curve25519 : dh_group::ecp256;
        } else if (k == "--state") {
            o.state_dir = v;
        } else if (k == "--fanout") {
            o.fanout.clear();
            for (char* tok = std::strtok(argv[i + 1], ","); tok != nullptr; tok = std::strtok(nullptr, ",")) {
                o.fanout.push_back(std::atoi(tok));
            }
        } else {
            std::fprintf(stderr, "usage: gkm_bench [--registrations N] [--concurrency C] [--fanout 10,100] "
                                 "[--group 19|31] [--state DIR]\n");
            std::exit(2);
        }
    }
    return o;
}

} // namespace

int main(int argc, char** argv)
{
    const options o = parse(argc, argv);
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;  // one socket per member
    setrlimit(RLIMIT_NOFILE, &files);

    const raw_costs raw = measure_raw(o.group, 2000);
    std::printf("raw, same run: ECDH group %u keygen + derive %.1f us; ECDSA P-256 sign %.1f us, verify %.1f us\n",
                unsigned(o.group), raw.ecdh_us, raw.sign_us, raw.verify_us);
    std::printf("  ECDH-only bound: %.0f registrations/s per core (2 x keygen + derive)\n", 1e6 / (2 * raw.ecdh_us));
    bench_registrations(o, raw);
    std::printf("rekey fan-out (unicast to each member over loopback; ECDSA sign %.1f us of it):\n", raw.sign_us);
    for (int n : o.fanout) {
        bench_fanout(o, n, delivery::unicast);
        bench_fanout(o, n, delivery::multicast);
    }
    std::printf("[E2] key tree eviction fan-out (binary LKH tree, batch committed at once, 5 evictions):\n");
    for (int n : o.fanout) {
        bench_tree_fanout(o, n, delivery::unicast);
        bench_tree_fanout(o, n, delivery::multicast);
    }
    return 0;
}
