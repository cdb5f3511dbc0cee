#include "sa_rt.hh"

#include <algorithm>

namespace msecgw::sa {

crypto::aead to_crypto(config::aead_alg a)
{
    return a == config::aead_alg::aes_128_gcm ? crypto::aead::aes_128_gcm : crypto::aead::aes_256_gcm;
}

uint64_t out_sa::counter_limit() const
{
    const uint64_t by_bits = counter_bits >= 64 ? UINT64_MAX : uint64_t{1} << counter_bits;
    return std::min<uint64_t>(by_bits, uint64_t{0xffffffff});
}

out_sa::~out_sa()
{
    crypto::clear_gcm_key(key);
}

in_sa::~in_sa()
{
    crypto::clear_gcm_key(key);
}

result<std::shared_ptr<out_sa>> make_out_sa(const config::sa_cfg& c, const crypto::engine& e, uint32_t uid,
                                            uint32_t sender_id, uint8_t sender_id_bits)
{
    if (sender_id_bits > config::max_sender_id_bits || sender_id >= (uint32_t{1} << sender_id_bits)) {
        return error{errc::config_bad_value, "SA " + c.name + ": Sender-ID does not fit its bits"};
    }
    auto sa = std::make_shared<out_sa>();
    if (auto r = crypto::make_gcm_key(to_crypto(c.aead), c.key.bytes(), sa->key, e); !r) {
        return error{r.err().code, "SA " + c.name + ": " + r.err().detail};
    }
    sa->spi = c.spi;
    sa->uid = uid;
    sa->name = c.name;
    sa->auth_slot = auth_slot_of(c);
    sa->counter_bits = static_cast<uint8_t>(64 - sender_id_bits - lane_bits);
    sa->iv_prefix = sender_id_bits == 0 ? 0 : uint64_t{sender_id} << (64 - sender_id_bits);
    return sa;
}

result<std::shared_ptr<in_sa>> make_in_sa(const config::sa_cfg& c, const crypto::engine& e, uint32_t uid)
{
    auto sa = std::make_shared<in_sa>();
    if (auto r = crypto::make_gcm_key(to_crypto(c.aead), c.key.bytes(), sa->key, e); !r) {
        return error{r.err().code, "SA " + c.name + ": " + r.err().detail};
    }
    sa->spi = c.spi;
    sa->uid = uid;
    sa->name = c.name;
    sa->auth_slot = auth_slot_of(c);
    sa->replay_window = c.replay_window;
    sa->dst = c.dst.value_or(config::ip_prefix{});
    sa->src = c.src.value_or(config::ip_prefix{});
    return sa;
}

} // namespace msecgw::sa
