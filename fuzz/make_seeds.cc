// Writes the seed corpora of the fuzz targets into DIR/<target>/: valid frames sealed by the real
// outbound path (so they open inbound), clear frames of every policy outcome, IKE messages (clear
// and SK-sealed under keys.hh's key), signed/TESLA/manifest source-auth packets, configs and CLI
// commands. Usage: fuzz_make_seeds DIR (needs root: it starts EAL without hugepages).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "dp_harness.hh"
#include "gkm/message.hh"
#include "keys.hh"
#include "srcauth/manifest.hh"
#include "srcauth/signed.hh"
#include "srcauth/tesla.hh"

using namespace msecgw;
namespace fs = std::filesystem;

namespace {

using bytes = std::vector<uint8_t>;

fs::path root;

void write(const std::string& target, const std::string& name, const bytes& data)
{
    fs::create_directories(root / target);
    std::ofstream(root / target / name, std::ios::binary).write(reinterpret_cast<const char*>(data.data()),
                                                                 static_cast<std::streamsize>(data.size()));
}

void write_text(const std::string& target, const std::string& name, std::string_view text)
{
    write(target, name, bytes(text.begin(), text.end()));
}

/// flags byte + records (u16 length + bytes), see input.hh.
bytes records(uint8_t flags, const std::vector<bytes>& recs)
{
    bytes out{flags};
    for (const auto& r : recs) {
        out.push_back(static_cast<uint8_t>(r.size() >> 8));
        out.push_back(static_cast<uint8_t>(r.size()));
        out.insert(out.end(), r.begin(), r.end());
    }
    return out;
}

bool packet_seeds()
{
    auto h = fuzz::dp_harness::create();
    if (!h) {
        return false;
    }
    const std::array<uint8_t, 16> src6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::array<uint8_t, 16> grp6{0xff, 0x3e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 7};
    const std::vector<std::pair<std::string, fuzz::frame>> clear = {
        {"v4", fuzz::udp4({10, 1, 0, 1}, {239, 1, 0, 1}, 64)},
        {"v4_vlan", fuzz::udp4({10, 1, 0, 1}, {239, 1, 0, 2}, 100, 100)},
        {"v6", fuzz::udp6(src6, grp6, 80)},
        {"noreplay", fuzz::udp4({10, 2, 0, 1}, {239, 2, 0, 1}, 40)},
        {"bypass", fuzz::udp4({10, 1, 0, 1}, {239, 3, 0, 1}, 30)},
        {"discard", fuzz::udp4({10, 1, 0, 1}, {239, 4, 0, 1}, 30)},
        {"nomatch", fuzz::udp4({10, 1, 0, 1}, {10, 9, 0, 1}, 30)},
        {"big_v4", fuzz::udp4({10, 1, 0, 1}, {239, 1, 0, 3}, 1470)},
        {"big_v6", fuzz::udp6(src6, grp6, 1450)},
    };
    for (const auto& [name, f] : clear) {
        write("packet", "out_" + name, records(1, {f}));
        const fuzz::burst_result r = h->outbound(f);
        if (r.out.empty()) {
            continue;
        }
        write("packet", "in_" + name, records(0, r.out)); // ESP (or its fragments), or bypassed
        std::vector<bytes> plain = r.out; // reseal mode: the fuzzer mutates plaintext
        for (auto& f : plain) {
            h->decrypt(f);
        }
        write("packet", "reseal_" + name, records(2, plain));
    }
    // A burst with a replayed and a reordered packet of one sender.
    std::vector<bytes> burst;
    for (int i = 0; i < 3; ++i) {
        burst.push_back(h->outbound(clear[0].second).out.at(0));
    }
    write("packet", "in_replay_burst", records(0, {burst[1], burst[0], burst[2], burst[1]}));
    return true;
}

void ike_seeds()
{
    using namespace gkm;
    proposal ike{1, protocol_id::ike, {},
                 {transform::make(transform_type::encr, encr_aes_gcm_16, 256),
                  transform::make(transform_type::prf, prf_hmac_sha2_256), transform::make(transform_type::ke, 19)}};
    message init;
    init.header = ike_header{0x0102030405060708ull, 0, payload_type::none, ike_version_2, exchange_type::ike_sa_init,
                             flag_initiator, 0, 0};
    init.payloads = {payload{payload_type::sa, false, sa_payload{{ike}}},
                     payload{payload_type::ke, false, ke_payload{19, bytes(64, 0x42)}},
                     payload{payload_type::nonce, false, nonce_payload{bytes(32, 0x17)}}};
    write("ike", "ike_sa_init", encode_message(init));
    message cookie = init;
    cookie.payloads.insert(cookie.payloads.begin(),
                           payload{payload_type::notify, false,
                                   notify_payload{protocol_id::none, {}, notify_type::cookie, bytes(16, 0xc0)}});
    write("ike", "ike_sa_init_cookie", encode_message(cookie));

    gsa_policy tek;
    tek.spi = {0xa5, 0xf8, 0, 1};
    tek.source = traffic_selector{7, 17, 0, 0xffff, {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}};
    tek.destination = traffic_selector{7, 17, 0, 0xffff, {239, 0, 0, 1}, {239, 0, 0, 1}};
    tek.transforms = {transform::make(transform_type::encr, encr_aes_gcm_16, 128)};
    tek.attributes = {attribute::u32(uint16_t(gsa_attribute::key_lifetime), 3600)};
    wrapped_key k{0xa5f80001, 0, bytes(40, 0x5a)};
    const std::vector<payload> inner = {
        payload{payload_type::idi, false, id_payload{id_type::key_id, {'g', 'm', '-', '1'}}},
        payload{payload_type::idg, false, id_payload{id_type::key_id, {0, 0, 0, 1}}},
        payload{payload_type::auth, false, auth_payload{auth_method::shared_key_mic, bytes(32, 0x99)}},
        payload{payload_type::gsa, false, gsa_payload{{tek}}},
        payload{payload_type::kd, false,
                kd_payload{{key_bag{key_bag_type::group,
                                    {attribute::long_form(uint16_t(group_key_attribute::sa_key), k.encode())}}}}},
        payload{payload_type::del, false, delete_payload{protocol_id::esp, 4, {{0xa5, 0xf8, 0, 2}}}},
    };
    const uint8_t iv[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (auto [name, ex] : {std::pair{"gsa_auth_sealed", exchange_type::gsa_auth},
                            std::pair{"gsa_rekey_sealed", exchange_type::gsa_rekey}}) {
        ike_header hdr{0x0102030405060708ull, 0x1112131415161718ull, payload_type::none, ike_version_2, ex,
                       flag_initiator, 1, 0};
        auto sealed = seal_message(hdr, inner, fuzz::ike_sk_key, iv);
        if (sealed) {
            write("ike", name, *sealed);
        }
    }
    message clear_auth = init;
    clear_auth.header.exchange = exchange_type::gsa_auth;
    clear_auth.payloads = inner;
    write("ike", "gsa_payloads_clear", encode_message(clear_auth));
}

void srcauth_seeds()
{
    using namespace srcauth;
    auto e = crypto::engine::create();
    auto s = signer::from_pem(fuzz::srcauth_private_pem);
    if (!e || !s) {
        return;
    }
    const uint64_t now = 1'000'000'000;
    const uint32_t inner = 40;
    auto packet = [&](size_t head) {
        bytes b(head + inner + wire::sig_len, 0);
        b[head] = 0x45;
        return b;
    };
    std::vector<bytes> recs;
    auto add = [&](const bytes& b, size_t len) { recs.emplace_back(b.begin(), b.begin() + long(len)); };
    auto emit = [&](const std::string& name) {
        bytes out;
        for (const auto& r : recs) {
            out.push_back(static_cast<uint8_t>(r.size() >> 8));
            out.push_back(static_cast<uint8_t>(r.size()));
            out.insert(out.end(), r.begin(), r.end());
        }
        write("srcauth", name, out);
        recs.clear();
    };
    {
        sign_sender ss(fuzz::srcauth_sender, std::move(signer::from_pem(fuzz::srcauth_private_pem).value()));
        bytes p = packet(sign_sender::header_len);
        tag_job j{p.data(), inner, wire::next_ipv4};
        uint8_t ok = 0;
        ss.tag_burst(*e, {&j, 1}, {&ok, 1});
        add(p, p.size());
        emit("signed_data");
    }
    {
        tesla_params tp{fuzz::srcauth_sender, 0, 100'000'000, 2, 64};
        auto ts = tesla_sender::create(*e, tp);
        if (ts) {
            bytes boot(wire::tesla_bootstrap_len);
            add(boot, ts->write_bootstrap(*e, *s, now, boot));
            for (int i = 0; i < 3; ++i) {
                bytes p = packet(tesla_sender::header_len);
                tag_job j{p.data(), inner, wire::next_ipv4};
                ts->tag_burst(*e, {&j, 1}, now + uint64_t(i) * 100'000'000);
                add(p, tesla_sender::header_len + inner);
            }
            bytes disc(wire::tesla_disclosure_len);
            add(disc, ts->write_disclosure(*e, now + 400'000'000, disc));
            emit("tesla");
        }
    }
    {
        auto ms = manifest_sender::create({fuzz::srcauth_sender, 4, 0});
        if (ms) {
            for (int i = 0; i < 2; ++i) {
                bytes p = packet(manifest_sender::header_len);
                tag_job j{p.data(), inner, wire::next_ipv4};
                ms->tag_burst(*e, {&j, 1}, now);
                add(p, manifest_sender::header_len + inner);
            }
            bytes m(ms->max_manifest_len());
            add(m, ms->write_manifest(*e, *s, m));
            emit("manifest");
        }
    }
}

void text_seeds()
{
    write_text("config", "harness.yaml", fuzz::default_config);
    const char* cmds[][2] = {
        {"show_stats", "MSECGW1\t0\tshow\tstats"},
        {"show_sa_json", "MSECGW1\t1\tshow\tsa"},
        {"show_drops", "show drops --json"},
        {"add_sa", "add sa name=x dir=in spi=0x2001 aead=aes-128-gcm key=0x000102030405060708090a0b0c0d0e0f01020304 "
                   "dst=239.9.0.0/16 replay_window=64"},
        {"add_policy", "add policy at=1 dir=in dst=239.9.0.0/16 proto=udp dport=1-2 vlan=none action=protect sa=i4"},
        {"del_policy", "del policy 1"},
        {"del_sa", "del sa o4"},
        {"set_log", "set log msecgw.* debug"},
        {"clear", "clear stats"},
        {"help", "help"},
        {"rekey", "rekey group g1"},
        {"show_group", "show group"},
    };
    for (const auto& c : cmds) {
        write_text("cli", c[0], c[1]);
    }
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
        return 2;
    }
    root = argv[1];
    if (!fuzz::init_eal() || !packet_seeds()) {
        return 1;
    }
    ike_seeds();
    srcauth_seeds();
    text_seeds();
    return 0;
}
