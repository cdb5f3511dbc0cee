#include "srcauth/signed.hh"

#include <cstring>

namespace msecgw::srcauth {

using namespace wire;

namespace {

std::span<const uint8_t, signed_digest_len> digest_view(const std::array<uint8_t, crypto::sha256_len>& d)
{
    return std::span<const uint8_t, signed_digest_len>(d.data(), signed_digest_len);
}

} // namespace

uint32_t sign_sender::tag_burst(crypto::engine& e, std::span<const tag_job> jobs, std::span<uint8_t> ok)
{
    std::array<crypto::sha256_op, max_burst> ops;
    std::array<std::array<uint8_t, crypto::sha256_len>, max_burst> digests;
    uint32_t good = 0;
    const size_t n = std::min(jobs.size(), ok.size());
    for (size_t base = 0; base < n; base += max_burst) {
        const size_t m = std::min<size_t>(max_burst, n - base);
        for (size_t k = 0; k < m; ++k) {
            const tag_job& j = jobs[base + k];
            put_common(j.hdr, msg_type::signed_data, j.next, uint16_t(signed_data_len), _id, ++_seq);
            j.hdr[sd_alg] = uint8_t(_signer.alg());
            std::memset(j.hdr + sd_alg + 1, 0, 3);
            ops[k] = crypto::sha256_op{j.hdr, uint32_t(signed_data_len + j.inner_len), digests[k].data()};
        }
        crypto::sha256_burst(e, std::span(ops.data(), m));
        for (size_t k = 0; k < m; ++k) {
            const tag_job& j = jobs[base + k];
            uint8_t* trailer = j.hdr + signed_data_len + j.inner_len;
            ok[base + k] = _signer.sign_digest(digest_view(digests[k]), std::span<uint8_t, sig_len>(trailer, sig_len));
            good += ok[base + k];
        }
    }
    return good;
}

struct sign_verifier::sender_state {
    uint32_t id;
    sig_verifier anchor;
    seq_window window;
};

sign_verifier::sign_verifier() = default;
sign_verifier::sign_verifier(sign_verifier&&) noexcept = default;
sign_verifier& sign_verifier::operator=(sign_verifier&&) noexcept = default;
sign_verifier::~sign_verifier() = default;

void sign_verifier::add_sender(uint32_t sender_id, sig_verifier anchor)
{
    _senders.add(sender_id, sender_state{sender_id, std::move(anchor), {}});
}

void sign_verifier::verify_burst(crypto::engine& e, std::span<const packet_view> in, std::span<decision> out)
{
    for (size_t base = 0; base < in.size() && base < out.size(); base += max_burst) {
        const size_t n = std::min<size_t>({max_burst, in.size() - base, out.size() - base});
        const auto chunk = in.subspan(base, n);
        uint32_t m = 0;
        for (size_t k = 0; k < n; ++k) {
            const packet_view& p = chunk[k];
            if (p.data != nullptr && p.len >= signed_data_len + signed_trailer_len) {
                _ops[m++] = crypto::sha256_op{p.data, uint32_t(p.len - signed_trailer_len), _digests[k].data()};
            }
        }
        crypto::sha256_burst(e, std::span(_ops.data(), m));
        judge_each(chunk, out.subspan(base, n), _stats, [&](const wire::common& c, const packet_view& p, size_t k) -> decision {
            sender_state* s = _senders.find(c.sender);
            if (s == nullptr) {
                return {verdict::drop, reason::unknown_sender};
            }
            if (c.type != msg_type::signed_data) {
                return {verdict::drop, reason::wrong_mode};
            }
            if (p.len < signed_data_len + signed_trailer_len || p.data[sd_alg] != uint8_t(s->anchor.alg()) ||
                (p.data[off_next] != next_ipv4 && p.data[off_next] != next_ipv6) || p.data[sd_alg + 1] != 0 ||
                p.data[sd_alg + 2] != 0 || p.data[sd_alg + 3] != 0) {
                return {verdict::drop, reason::malformed};
            }
            const uint8_t* sig = p.data + p.len - signed_trailer_len;
            if (!s->anchor.verify_digest(digest_view(_digests[k]), std::span<const uint8_t, sig_len>(sig, sig_len))) {
                return {verdict::drop, reason::bad_signature};
            }
            if (!s->window.accept(load_be64(p.data + off_seq))) {
                return {verdict::drop, reason::replayed_packet};
            }
            return {verdict::release, reason::none};
        });
    }
}

} // namespace msecgw::srcauth
