// The IKEv2 / G-IKEv2 decoder: header + payload chain (SA, KE, Nonce, ID, AUTH, Notify, Delete,
// GSA, KD, SK), SK opening with a fixed key, wrapped keys. A message that decodes must encode and
// decode again to the same bytes.
#include <cstdint>
#include <cstdlib>

#include "gkm/message.hh"
#include "keys.hh"

using namespace msecgw::gkm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const byte_view in(data, size);
    auto m = decode_message(in);
    if (m) {
        const bytes again = encode_message(*m);
        auto m2 = decode_message(again);
        if (!m2 || encode_message(*m2) != again) {
            std::abort();
        }
        auto inner = open_message(*m, in, msecgw::fuzz::ike_sk_key);
        if (inner) {
            bytes chain;
            encode_payload_chain(chain, *inner);
        }
    }
    if (size >= 1) {
        (void)decode_payload_chain(static_cast<payload_type>(data[0]), in.subspan(1));
    }
    (void)wrapped_key::decode(in);
    return 0;
}
