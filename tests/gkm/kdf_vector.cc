// Prints an IKE_SA_INIT key derivation for fixed inputs so kdf_crosscheck.py can redo it with
// Python's cryptography. Usage: gkm_kdf_vector GROUP PRIV_I PRIV_R NI NR SPI_I SPI_R KEY_BYTES
// (hex except GROUP and KEY_BYTES). Test tool: it prints keys by design.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gkm/crypto.hh"

using namespace msecgw;
using namespace msecgw::gkm;

namespace {

void print(const char* name, byte_view value)
{
    std::printf("%s %s\n", name, to_hex(value).c_str());
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 9) {
        std::fprintf(stderr, "usage: %s GROUP PRIV_I PRIV_R NI NR SPI_I SPI_R KEY_BYTES\n", argv[0]);
        return 2;
    }
    const auto group = static_cast<dh_group>(std::stoi(argv[1]));
    result<ecdh_key> ki = ecdh_key::from_private(group, from_hex(argv[2]));
    result<ecdh_key> kr = ecdh_key::from_private(group, from_hex(argv[3]));
    if (!ki || !kr) {
        std::fprintf(stderr, "bad private key\n");
        return 1;
    }
    result<secret> gir = ki->shared_secret(kr->public_value());
    result<secret> gri = kr->shared_secret(ki->public_value());
    if (!gir || !gri || !equal_constant_time(gir->view(), gri->view())) {
        std::fprintf(stderr, "ECDH failed\n");
        return 1;
    }
    const bytes ni = from_hex(argv[4]);
    const bytes nr = from_hex(argv[5]);
    const uint64_t spi_i = std::stoull(argv[6], nullptr, 16);
    const uint64_t spi_r = std::stoull(argv[7], nullptr, 16);
    ike_sa_keys k = derive_ike_sa_keys(ni, nr, gir->view(), spi_i, spi_r, std::stoul(argv[8]));
    print("ke_i", ki->public_value());
    print("ke_r", kr->public_value());
    print("g_ir", gir->view());
    print("sk_d", k.sk_d.view());
    print("sk_ei", k.sk_ei.view());
    print("sk_er", k.sk_er.view());
    print("sk_pi", k.sk_pi.view());
    print("sk_pr", k.sk_pr.view());
    // One SK-style seal under SK_ei and one RFC 5649 wrap under SK_d for the script to open.
    const bytes iv = from_hex("0001020304050607");
    const bytes aad = from_hex("a0a1a2a3a4a5a6a7a8a9");
    const std::string text = "inner payloads";
    result<bytes> sealed = gcm_seal(k.sk_ei.view(), iv, aad, as_bytes(text));
    result<bytes> wrapped = key_wrap(k.sk_d.view(), k.sk_pi.view().first(20));
    if (!sealed || !wrapped) {
        return 1;
    }
    print("sealed", *sealed);
    print("wrapped", *wrapped);
    return 0;
}
