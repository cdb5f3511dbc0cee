// [I] IKE flood against a running key server (docs/robustness.md "IKE flood"): IKE_SA_INIT
// requests, each with a fresh SPIi, from many loopback addresses (127.0.0.2 ...) and source
// ports, mixed with garbage datagrams; counts what comes back. With --echo-cookies it answers
// every COOKIE the way a flooder with real addresses would (the key server then does
// Diffie-Hellman and keeps half-open state, up to its caps). With --watch PID it reports the peak
// resident memory (VmHWM) of that process. A load generator: nothing is asserted here
// (tests/integration/ike_flood_test.py asserts on its output and the key server's).
//
//   ike_flood --target ADDR:PORT [--requests N] [--garbage-every K] [--sources S] [--ports P]
//             [--rate PPS] [--echo-cookies] [--watch PID] [--until PATH]
//
// --until PATH keeps flooding after the N requests until PATH exists (a test's members register
// under the flood, then it creates PATH).
//
// Output, one line: requests=N garbage=G cookies=C answers=A cookie_retries=R other=O seconds=T
//                   [vmhwm_kib=K vmrss_start_kib=K]

#include <poll.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gkm/gkm.hh"
#include "gkm/ike_sa.hh"
#include "gkm/registration.hh"

using namespace msecgw;
using namespace msecgw::gkm;

namespace {

struct options {
    endpoint target;
    long requests = 100'000;
    long garbage_every = 10;  ///< one garbage datagram after every K requests (0: none)
    int sources = 16;         ///< 127.0.0.2 .. 127.0.0.(1 + sources)
    int ports = 4;            ///< sockets (source ports) per address
    double rate = 0;          ///< datagrams per second; 0: as fast as the sockets take them
    bool echo_cookies = false;
    long watch = 0;
    std::string until;  ///< keep flooding past `requests` until this file exists
};

struct tally {
    long requests = 0;
    long garbage = 0;
    long cookies = 0;
    long answers = 0;
    long cookie_retries = 0;
    long other = 0;
};

/// splitmix64: cheap distinct SPIs and garbage (not a secret).
struct mix {
    uint64_t state;
    uint64_t next()
    {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
};

/// The nonce of SPIi: derived, so a COOKIE answer can be echoed without keeping anything.
bytes nonce_of(uint64_t spi)
{
    bytes n;
    for (size_t i = 0; i < our_nonce_size / 8; ++i) {
        wire_writer(n).u64(spi ^ (0x0101010101010101ull * i));
    }
    return n;
}

long status_kib(long pid, const char* field)
{
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    const size_t n = std::strlen(field);
    while (std::getline(f, line)) {
        if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
            return std::atol(line.c_str() + n + 1);
        }
    }
    return -1;
}

class flooder {
public:
    flooder(const options& o, bytes public_value) : _o(o), _public(std::move(public_value)), _rng{uint64_t(clock::now().time_since_epoch().count())} {}

    bool open()
    {
        for (int a = 0; a < _o.sources; ++a) {
            for (int p = 0; p < _o.ports; ++p) {
                result<udp_socket> s = udp_socket::open(endpoint{0x7f000002u + uint32_t(a), 0});
                if (!s) {
                    std::fprintf(stderr, "ike_flood: %s\n", s.err().detail.c_str());
                    return false;
                }
                _sockets.push_back(std::make_unique<udp_socket>(std::move(*s)));
            }
        }
        return true;
    }

    void run()
    {
        const auto t0 = clock::now();
        long sent = 0;
        _until_seen = _o.until.empty();
        for (long i = 0; more(i); ++i) {
            const udp_socket& s = *_sockets[size_t(i) % _sockets.size()];
            const uint64_t spi = _rng.next() | 1;
            send(s, encode_message(ike_sa_init_request(spi, dh_group::ecp256, _public, nonce_of(spi))));
            ++_t.requests;
            ++sent;
            if (_o.garbage_every > 0 && (i + 1) % _o.garbage_every == 0) {
                send(s, garbage(i / _o.garbage_every));
                ++_t.garbage;
                ++sent;
            }
            if (sent % 64 == 0) {
                drain();
            }
            if (_o.rate > 0) {
                const auto due = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(double(sent) / _o.rate));
                if (due > clock::now()) {
                    std::this_thread::sleep_until(due);
                }
            }
        }
        const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
        const auto end = clock::now() + std::chrono::seconds(1);  // late answers
        while (clock::now() < end) {
            drain();
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        std::printf("requests=%ld garbage=%ld cookies=%ld answers=%ld cookie_retries=%ld other=%ld seconds=%.3f",
                    _t.requests, _t.garbage, _t.cookies, _t.answers, _t.cookie_retries, _t.other, seconds);
        if (_o.watch > 0) {
            std::printf(" vmhwm_kib=%ld vmrss_kib=%ld", status_kib(_o.watch, "VmHWM"), status_kib(_o.watch, "VmRSS"));
        }
        std::printf("\n");
    }

private:
    bool more(long i)
    {
        if (i < _o.requests) {
            return true;
        }
        if (i % 256 == 0) {  // a stat() now and then, not per request
            _until_seen = _o.until.empty() || std::filesystem::exists(_o.until);
        }
        return !_until_seen;
    }

    void send(const udp_socket& s, const bytes& data)
    {
        // Loopback UDP: a full receive buffer drops at the key server's side, never here; a
        // refused send (ENOBUFS) is retried once after a pause.
        if (!s.send_to(_o.target, data)) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            s.send_to(_o.target, data);
        }
    }

    /// Kinds in turn: random bytes, a request cut short, a request flagged as a response (well
    /// formed, not answered), a header claiming more bytes than sent.
    bytes garbage(long k)
    {
        const uint64_t spi = _rng.next() | 1;
        bytes m = encode_message(ike_sa_init_request(spi, dh_group::ecp256, _public, nonce_of(spi)));
        switch (k % 4) {
        case 0: {
            bytes b(1 + _rng.next() % 400);
            for (uint8_t& x : b) {
                x = uint8_t(_rng.next());
            }
            return b;
        }
        case 1: m.resize(1 + _rng.next() % (m.size() - 1)); return m;
        case 2: m[19] = flag_response; return m;
        default: m[27] = uint8_t(m[27] + 64); return m;  // length field (low byte) beyond the datagram
        }
    }

    void drain()
    {
        for (const auto& s : _sockets) {
            while (std::optional<received_datagram> dg = s->receive()) {
                result<message> m = decode_message(dg->data);
                if (!m) {
                    ++_t.other;
                    continue;
                }
                if (const notify_payload* c = find_notify(m->payloads, notify_type::cookie); c != nullptr) {
                    ++_t.cookies;
                    if (_o.echo_cookies) {
                        const uint64_t spi = m->header.spi_i;
                        send(*s, encode_message(ike_sa_init_request(spi, dh_group::ecp256, _public, nonce_of(spi), c->data)));
                        ++_t.cookie_retries;
                    }
                } else if (find_payload<ke_payload>(m->payloads, payload_type::ke) != nullptr) {
                    ++_t.answers;
                } else {
                    ++_t.other;
                }
            }
        }
    }

    const options& _o;
    bytes _public;
    mix _rng;
    tally _t;
    bool _until_seen = false;
    std::vector<std::unique_ptr<udp_socket>> _sockets;
};

bool parse(int argc, char** argv, options& o)
{
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--echo-cookies") {
            o.echo_cookies = true;
            continue;
        }
        if (v == nullptr) {
            return false;
        }
        ++i;
        if (a == "--target") {
            const std::string t = v;
            const size_t colon = t.rfind(':');
            result<endpoint> e = colon == std::string::npos ? result<endpoint>(error{errc::config_bad_value, t})
                                                            : endpoint::parse(t.substr(0, colon), uint16_t(std::atoi(t.c_str() + colon + 1)));
            if (!e) {
                return false;
            }
            o.target = *e;
        } else if (a == "--requests") {
            o.requests = std::atol(v);
        } else if (a == "--garbage-every") {
            o.garbage_every = std::atol(v);
        } else if (a == "--sources") {
            o.sources = std::max(1, std::min(250, std::atoi(v)));
        } else if (a == "--ports") {
            o.ports = std::max(1, std::atoi(v));
        } else if (a == "--rate") {
            o.rate = std::atof(v);
        } else if (a == "--until") {
            o.until = v;
        } else if (a == "--watch") {
            o.watch = std::atol(v);
        } else {
            return false;
        }
    }
    return o.target.port != 0;
}

} // namespace

int main(int argc, char** argv)
{
    options o;
    o.target.port = 0;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr, "usage: ike_flood --target ADDR:PORT [--requests N] [--garbage-every K] [--sources S] "
                             "[--ports P] [--rate PPS] [--echo-cookies] [--watch PID] [--until PATH]\n");
        return 2;
    }
    result<ecdh_key> key = ecdh_key::generate(dh_group::ecp256);
    if (!key) {
        std::fprintf(stderr, "ike_flood: %s\n", key.err().detail.c_str());
        return 1;
    }
    flooder f(o, key->public_value());
    if (!f.open()) {
        return 1;
    }
    f.run();
    return 0;
}
