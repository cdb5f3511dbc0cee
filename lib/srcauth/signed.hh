#pragma once
/// Per-packet signatures (`sign` mode, for low-rate groups): a 20-byte header in front of the
/// inner packet and a 64-byte signature trailer over SHA-256(header || inner packet). Digests are
/// batched on ipsec-mb; each signature is one OpenSSL call (about 20-120 us: see docs/performance.md).

#include "common/result.hh"
#include "crypto/auth.hh"
#include "srcauth/hold.hh"
#include "srcauth/signature.hh"
#include "srcauth/tesla.hh"

namespace msecgw::srcauth {

class sign_sender {
public:
    static constexpr size_t header_len = wire::signed_data_len;
    static constexpr size_t trailer_len = wire::signed_trailer_len;

    sign_sender(uint32_t sender_id, signer s) : _id(sender_id), _signer(std::move(s)) {}
    /// Worker: header, digest and signature of every job (64 bytes of room after each inner packet).
    /// Returns how many were signed; a job whose signature failed must not be sent.
    uint32_t tag_burst(crypto::engine& e, std::span<const tag_job> jobs, std::span<uint8_t> ok);

private:
    uint32_t _id;
    signer _signer;
    uint64_t _seq = 0;
};

class sign_verifier {
public:
    sign_verifier();
    sign_verifier(sign_verifier&&) noexcept;
    sign_verifier& operator=(sign_verifier&&) noexcept;
    ~sign_verifier();

    void add_sender(uint32_t sender_id, sig_verifier anchor);
    /// Worker: release or drop every packet (nothing is held).
    void verify_burst(crypto::engine& e, std::span<const packet_view> in, std::span<decision> out);
    const counters& stats() const { return _stats; }

    struct sender_state;

private:
    sender_table<sender_state> _senders;
    counters _stats;
    std::array<std::array<uint8_t, crypto::sha256_len>, max_burst> _digests{};
    std::array<crypto::sha256_op, max_burst> _ops{};
};

} // namespace msecgw::srcauth
