// [E2] LKH rekey cost: for each group size n, the size and compute time of a single-leave and a
// single-join rekey, batch-rekey size against batch size, and the tree's memory per member, next
// to the naive rekey (a new group key wrapped for every remaining member, sent by unicast) in the
// same run. In-process, no sockets. A benchmark, not a test: nothing here is asserted.
//
//   lkh_bench [--sizes 1000,10000,100000,1000000] [--batches 1,10,100,1000] [--arity 2]
//             [--key-size 16] [--mtu 1500] [--repeats 101] [--json FILE]
//
// Bytes are the encoded KD payloads (RFC 9838 Member Key Bag, WRAP_KEY attributes) of all parts at
// the given MTU, without the GSA_REKEY envelope (parts × gsa_rekey_envelope_bytes more on the wire).
// Compute time is lkh_tree::commit() plus encoding, one thread, median over the repeats.
// Wire bytes are the real GSA_REKEY datagrams of the parts (seal_rekey: IKE header, SK under a
// KEK, ECDSA P-256 AUTH) plus 28 B of IPv4 and UDP header each, encoded after the timing.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gkm/lkh.hh"
#include "gkm/rekey.hh"

using namespace msecgw;
using namespace msecgw::gkm;

namespace {

using bench_clock = std::chrono::steady_clock;

struct options {
    std::vector<uint32_t> sizes{1000, 10000, 100000, 1000000};
    std::vector<uint32_t> batches{1, 10, 100, 1000};
    unsigned arity = 2;
    size_t key_size = 16;
    size_t mtu = 1500;
    int repeats = 101;
    std::string json;
};

std::vector<uint32_t> parse_list(const char* s)
{
    std::vector<uint32_t> out;
    for (const char* p = s; *p;) {
        out.push_back(uint32_t(std::strtoul(p, nullptr, 10)));
        p = std::strchr(p, ',');
        p = p ? p + 1 : "";
    }
    return out;
}

options parse(int argc, char** argv)
{
    options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const char* v = argv[i + 1];
        if (k == "--sizes") {
            o.sizes = parse_list(v);
        } else if (k == "--batches") {
            o.batches = parse_list(v);
        } else if (k == "--arity") {
            o.arity = unsigned(std::atoi(v));
        } else if (k == "--key-size") {
            o.key_size = size_t(std::atoi(v));
        } else if (k == "--mtu") {
            o.mtu = size_t(std::atoi(v));
        } else if (k == "--repeats") {
            o.repeats = std::atoi(v);
        } else if (k == "--json") {
            o.json = v;
        } else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            std::exit(2);
        }
    }
    return o;
}

[[noreturn]] void fail(const error& e)
{
    std::fprintf(stderr, "lkh_bench: %s\n", e.detail.c_str());
    std::exit(1);
}

template <class T>
T take(result<T> r)
{
    if (!r) {
        fail(r.err());
    }
    return std::move(r.value());
}

size_t resident_bytes()
{
    std::ifstream statm("/proc/self/statm");
    size_t pages = 0;
    size_t resident = 0;
    statm >> pages >> resident;
    return resident * size_t(sysconf(_SC_PAGESIZE));
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

struct rekey_cost {
    size_t bytes = 0;
    size_t wire_bytes = 0;  ///< GSA_REKEY datagrams of all parts, IPv4 and UDP headers included
    size_t parts = 0;
    size_t wrapped_keys = 0;
    double micros = 0;
};

/// Commits the pending batch and encodes it; the time covers both.
rekey_cost commit_and_encode(lkh_tree& tree, size_t part_budget)
{
    const auto start = bench_clock::now();
    lkh_rekey rekey = take(tree.commit());
    std::vector<bytes> parts = take(encode_lkh_rekey(rekey, part_budget));
    rekey_cost c;
    c.micros = std::chrono::duration<double, std::micro>(bench_clock::now() - start).count();
    for (const bytes& p : parts) {
        c.bytes += p.size();
    }
    c.parts = parts.size();
    c.wrapped_keys = rekey.keys.size();
    // The same parts as the GCKS sends them (untimed).
    static const signing_key signer = take(signing_key::generate());
    static const secret kek = random_secret(kek_key_size + gcm_salt_size);
    static const bytes kek_spi = random_bytes(16);
    constexpr size_t ipv4_udp_bytes = 28;
    for (size_t i = 0; i < parts.size(); ++i) {
        std::vector<payload> kd = take(decode_payload_chain(payload_type::kd, parts[i]));
        c.wire_bytes += take(seal_rekey(signer, kek_spi, uint32_t(i + 1), std::move(kd), kek.view())).size() + ipv4_udp_bytes;
    }
    return c;
}

struct size_result {
    uint32_t n = 0;
    unsigned depth = 0;
    double build_s = 0;
    double tree_bytes_per_member = 0;
    double rss_bytes_per_member = 0;
    rekey_cost leave;  ///< medians
    rekey_cost join;
    std::vector<std::pair<uint32_t, rekey_cost>> batches;  ///< batch of b leaves
    size_t naive_bytes = 0;
    double naive_ms = 0;
};

/// Median cost over `repeats` single-member changes; the tree is refilled between repeats.
rekey_cost single_change(lkh_tree& tree, std::vector<uint32_t>& live, std::mt19937& rng, int repeats, bool leave,
                         size_t budget)
{
    std::vector<double> micros, sizes, parts, keys, wire;
    for (int r = 0; r < repeats; ++r) {
        if (leave) {
            const size_t i = rng() % live.size();
            if (result<void> ok = tree.remove_member(live[i]); !ok) {
                fail(ok.err());
            }
            live[i] = live.back();
            live.pop_back();
        } else {
            // Make room first (untimed), then time the join alone.
            const size_t i = rng() % live.size();
            (void)tree.remove_member(live[i]);
            live[i] = live.back();
            live.pop_back();
            (void)commit_and_encode(tree, budget);
            live.push_back(take(tree.add_member()));
        }
        const rekey_cost c = commit_and_encode(tree, budget);
        micros.push_back(c.micros);
        sizes.push_back(double(c.bytes));
        parts.push_back(double(c.parts));
        keys.push_back(double(c.wrapped_keys));
        wire.push_back(double(c.wire_bytes));
        if (leave) {
            live.push_back(take(tree.add_member()));
            (void)commit_and_encode(tree, budget);
        }
    }
    return rekey_cost{size_t(median(sizes)), size_t(median(wire)), size_t(median(parts)), size_t(median(keys)), median(micros)};
}

size_result run_size(const options& o, uint32_t n, std::mt19937& rng)
{
    const size_t budget = o.mtu - gsa_rekey_envelope_bytes;
    size_result out;
    out.n = n;
    const size_t rss0 = resident_bytes();
    const auto t0 = bench_clock::now();
    lkh_tree tree = take(lkh_tree::create(lkh_config{o.arity, n, o.key_size}));
    std::vector<uint32_t> live;
    live.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
        live.push_back(take(tree.add_member()));
    }
    (void)take(tree.commit());
    out.build_s = std::chrono::duration<double>(bench_clock::now() - t0).count();
    out.depth = tree.depth();
    out.tree_bytes_per_member = double(tree.memory_bytes()) / n;
    out.rss_bytes_per_member = double(resident_bytes() - rss0) / n;

    const int repeats = n >= 1000000 ? std::max(11, o.repeats / 4) : o.repeats;
    out.leave = single_change(tree, live, rng, repeats, true, budget);
    out.join = single_change(tree, live, rng, repeats, false, budget);

    for (uint32_t b : o.batches) {
        if (b >= n / 2) {
            continue;
        }
        std::vector<uint32_t> gone;
        for (uint32_t k = 0; k < b; ++k) {
            const size_t i = rng() % live.size();
            (void)tree.remove_member(live[i]);
            live[i] = live.back();
            live.pop_back();
        }
        out.batches.emplace_back(b, commit_and_encode(tree, budget));
        for (uint32_t k = 0; k < b; ++k) {
            live.push_back(take(tree.add_member()));
        }
        (void)commit_and_encode(tree, budget);
    }

    // Naive: one new group key wrapped under each remaining member's own key, one unicast each.
    const secret group_key = random_secret(o.key_size);
    const auto naive0 = bench_clock::now();
    for (size_t i = 0; i + 1 < live.size(); ++i) {
        const bytes wrapped = take(key_wrap(*tree.node_key(live[i]), group_key.view()));
        out.naive_bytes += 4 + 8 + wrapped.size();  // one WRAP_KEY attribute per member
    }
    out.naive_ms = std::chrono::duration<double, std::milli>(bench_clock::now() - naive0).count();
    return out;
}

void write_json(const options& o, const std::vector<size_result>& results)
{
    std::ofstream f(o.json);
    f << "{\n  \"arity\": " << o.arity << ", \"key_size\": " << o.key_size << ", \"mtu\": " << o.mtu
      << ", \"envelope_bytes\": " << gsa_rekey_envelope_bytes << ",\n  \"sizes\": [\n";
    for (size_t i = 0; i < results.size(); ++i) {
        const size_result& r = results[i];
        f << "    {\"n\": " << r.n << ", \"depth\": " << r.depth << ", \"build_s\": " << r.build_s
          << ", \"tree_bytes_per_member\": " << r.tree_bytes_per_member
          << ", \"rss_bytes_per_member\": " << r.rss_bytes_per_member << ",\n     \"leave\": {\"bytes\": " << r.leave.bytes
          << ", \"wire_bytes\": " << r.leave.wire_bytes << ", \"parts\": " << r.leave.parts << ", \"wrapped_keys\": " << r.leave.wrapped_keys
          << ", \"us\": " << r.leave.micros << "},\n     \"join\": {\"bytes\": " << r.join.bytes
          << ", \"parts\": " << r.join.parts << ", \"wrapped_keys\": " << r.join.wrapped_keys << ", \"us\": " << r.join.micros
          << "},\n     \"naive\": {\"bytes\": " << r.naive_bytes << ", \"ms\": " << r.naive_ms << "},\n     \"batches\": [";
        for (size_t j = 0; j < r.batches.size(); ++j) {
            const rekey_cost& c = r.batches[j].second;
            f << (j ? ", " : "") << "{\"leaves\": " << r.batches[j].first << ", \"bytes\": " << c.bytes
              << ", \"wire_bytes\": " << c.wire_bytes
              << ", \"parts\": " << c.parts << ", \"wrapped_keys\": " << c.wrapped_keys << ", \"us\": " << c.micros << "}";
        }
        f << "]}" << (i + 1 < results.size() ? "," : "") << "\n";
    }
    f << "  ]\n}\n";
}

} // namespace

int main(int argc, char** argv)
{
    const options o = parse(argc, argv);
    std::mt19937 rng(7);
    std::vector<size_result> results;
    std::printf("LKH arity %u, %zu-byte keys, parts of at most %zu B (MTU %zu − %zu B GSA_REKEY envelope)\n", o.arity,
                o.key_size, o.mtu - gsa_rekey_envelope_bytes, o.mtu, gsa_rekey_envelope_bytes);
    std::printf("%9s %5s %8s %8s | %7s %7s %5s %5s %8s | %6s %6s %5s %8s | %12s %9s | %s\n", "n", "depth", "B/memb",
                "RSS/memb", "leave B", "wire B", "parts", "keys", "leave us", "join B", "wire B", "keys", "join us",
                "naive B", "naive ms", "batch of b leaves: b=bytes/wire bytes/parts/us");
    for (uint32_t n : o.sizes) {
        results.push_back(run_size(o, n, rng));
        const size_result& r = results.back();
        std::printf("%9u %5u %8.1f %8.1f | %7zu %7zu %5zu %5zu %8.1f | %6zu %6zu %5zu %8.1f | %12zu %9.1f |", r.n,
                    r.depth, r.tree_bytes_per_member, r.rss_bytes_per_member, r.leave.bytes, r.leave.wire_bytes,
                    r.leave.parts, r.leave.wrapped_keys, r.leave.micros, r.join.bytes, r.join.wire_bytes,
                    r.join.wrapped_keys, r.join.micros, r.naive_bytes, r.naive_ms);
        for (const auto& [b, c] : r.batches) {
            std::printf(" %u=%zu/%zu/%zu/%.0f", b, c.bytes, c.wire_bytes, c.parts, c.micros);
        }
        std::printf("\n");
        std::fflush(stdout);
    }
    if (!o.json.empty()) {
        write_json(o, results);
    }
    return 0;
}
