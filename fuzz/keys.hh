#pragma once
// Fixed test keys shared by the fuzz targets and the seed generator, so that seeds made with them
// authenticate and reach the code behind the checks. Test material only: never used by msecgw.

#include <array>
#include <cstdint>

namespace msecgw::fuzz {

/// SK_e of the IKE fuzz target (AES-256-GCM key || 4-byte salt).
inline constexpr std::array<uint8_t, 36> ike_sk_key{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                                    13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
                                                    25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36};

/// The source-authentication sender of the srcauth fuzz target (Ed25519, sender id 7).
inline constexpr uint32_t srcauth_sender = 7;
inline constexpr const char* srcauth_private_pem = "-----BEGIN PRIVATE KEY-----\n"
                                                   "MC4CAQAwBQYDK2VwBCIEIB7mRBf9H6ImsOWdinROSf8bthrGmfawghUoKWj08bdZ\n"
                                                   "-----END PRIVATE KEY-----\n";

} // namespace msecgw::fuzz
