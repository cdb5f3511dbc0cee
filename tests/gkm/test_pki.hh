#pragma once
// A throw-away PKI for certificate tests, made with the openssl command in a temp directory: a CA
// and a rogue CA, ECDSA P-256 certificates for gcks, gm-a and gm-outsider, RSA 2048 for gm-b, and a
// gm-a certificate from the rogue CA ("rogue-gm-a").

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gkm/gkm.hh"

namespace msecgw::gkm::test {

/// A throw-away PKI in a temp directory: two CAs, and certificates signed by them.
class pki {
public:
    pki() : dir(std::filesystem::temp_directory_path() / ("msecgw-pki-" + std::to_string(::getpid())))
    {
        std::filesystem::create_directories(dir);
        ok = make_ca("ca") && make_ca("rogue-ca") && make_cert("gcks", "ca", "ec") && make_cert("gm-a", "ca", "ec") &&
             make_cert("gm-b", "ca", "rsa") && make_cert("gm-outsider", "ca", "ec") && make_cert("gm-a", "rogue-ca", "ec", "rogue-gm-a");
    }
    ~pki() { std::filesystem::remove_all(dir); }

    certificate_config of(const std::string& name) const
    {
        return certificate_config{path(name + ".crt"), path(name + ".key"), path("ca.crt")};
    }
    std::string path(const std::string& f) const { return (dir / f).string(); }

    std::filesystem::path dir;
    bool ok = false;

private:
    bool run(const std::string& cmd) const { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }
    std::string key_cmd(const std::string& type, const std::string& out) const
    {
        return type == "rsa" ? "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + out
                             : "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + out;
    }
    bool make_ca(const std::string& name) const
    {
        return run(key_cmd("ec", path(name + ".key"))) &&
               run("openssl req -x509 -new -key " + path(name + ".key") + " -subj /CN=" + name + " -days 2 -out " +
                   path(name + ".crt"));
    }
    bool make_cert(const std::string& cn, const std::string& ca, const std::string& type, std::string file = "") const
    {
        file = file.empty() ? cn : file;
        return run(key_cmd(type, path(file + ".key"))) &&
               run("openssl req -new -key " + path(file + ".key") + " -subj /CN=" + cn + " -out " + path(file + ".csr")) &&
               run("openssl x509 -req -in " + path(file + ".csr") + " -CA " + path(ca + ".crt") + " -CAkey " +
                   path(ca + ".key") + " -CAcreateserial -days 1 -out " + path(file + ".crt"));
    }
};

} // namespace msecgw::gkm::test
