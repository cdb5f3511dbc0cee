#pragma once
/// AES-GCM for ESP (RFC 4106) on Intel ipsec-mb, one engine per lcore.
///
/// Threading model: an `engine` wraps one ipsec-mb manager (IMB_MGR). It is created on the
/// control core before the workers launch and afterwards used by exactly one lcore; it is not
/// thread-safe and holds no locks. `seal_burst`/`open_burst` do not allocate, lock, make system
/// calls or throw. A `gcm_key` is plain data (trivially copyable, no pointers): build it on the
/// control core with `make_gcm_key`, publish it inside the SA runtime object, wipe it with
/// `clear_gcm_key` when the SA is retired.

#include "common/burst.hh"
#include "common/result.hh"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

struct IMB_MGR; // intel-ipsec-mb.h is included by lib/crypto/imb_backend.hh only

namespace msecgw::crypto {

enum class aead : uint8_t { aes_128_gcm, aes_256_gcm };

/// ipsec-mb code paths (mirrors IMB_ARCH). The expanded key layout differs between them.
/// `none` marks a wiped or never-built key: no engine accepts it.
enum class cpu_arch : uint8_t { none, noaesni, sse, avx, avx2, avx512 };

std::string_view to_string(aead a);
std::string_view to_string(cpu_arch a);

inline constexpr size_t gcm_salt_len = 4;  ///< RFC 4106 salt, last 4 bytes of the keying material
inline constexpr size_t gcm_iv_len = 8;    ///< explicit IV carried after the ESP header
inline constexpr size_t gcm_aad_len = 8;   ///< SPI || 32-bit sequence number (no ESN for groups)
inline constexpr size_t gcm_icv_len = 16;  ///< ICV (tag) length
inline constexpr size_t gcm_expanded_len = 1024; ///< room for ipsec-mb's struct gcm_key_data

/// Expanded AES-GCM key for one SA direction. Opaque: fill with make_gcm_key only.
/// Holds round keys: the owner must call clear_gcm_key before the memory is reused.
/// sizeof is 1088 (ipsec-mb 1.3's gcm_key_data alone is 1008 bytes: 48 GHASH powers for the
/// VAES kernels), so an SA runtime object embedding it exceeds STYLE.md's 128-byte budget.
struct alignas(64) gcm_key {
    std::array<uint8_t, gcm_expanded_len> expanded; ///< ipsec-mb struct gcm_key_data
    std::array<uint8_t, gcm_salt_len> salt;         ///< first 4 bytes of every nonce
    aead alg;
    cpu_arch arch; ///< arch of the engine that expanded it; only engines of this arch accept it
};
static_assert(std::is_trivially_copyable_v<gcm_key>);

/// Per-lcore ipsec-mb manager. Non-copyable, movable, frees the manager on destruction.
class engine {
public:
    /// Control core: allocate a manager and let ipsec-mb pick the fastest code path.
    static result<engine> create();
    /// Control core / tests: force one code path; errc::unsupported if the CPU lacks it.
    static result<engine> create(cpu_arch forced);

    engine(engine&& other) noexcept;
    engine& operator=(engine&& other) noexcept;
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;
    ~engine();

    cpu_arch arch_id() const { return _arch; }
    /// Selected code path for logs, e.g. "avx512" or "avx512-vaes" (VAES/VPCLMULQDQ GCM kernels).
    std::string_view arch() const;
    /// ipsec-mb's detected feature bits (IMB_FEATURE_*), for diagnostics.
    uint64_t features() const;

private:
    friend struct engine_access; // lib/crypto internals reach the IMB_MGR through it

    engine(IMB_MGR* mgr, cpu_arch arch) : _mgr(mgr), _arch(arch) {}
    IMB_MGR* _mgr = nullptr;
    cpu_arch _arch = cpu_arch::none;
};

/// Control core: expand keying material (key || 4-byte salt, 20 bytes for AES-128 and 36 for
/// AES-256, RFC 4106 section 8.1) into `out`. The expanded layout is arch-specific, so the key
/// is bound to `e.arch_id()`: use an engine of the workers' arch (every engine made by create()
/// on one host agrees), preferably the control plane's own engine. Only the engine's dispatch
/// table is read, never its job queue. The key bytes are read in place, no copy is made.
/// On error `out` is wiped.
result<void> make_gcm_key(aead alg, std::span<const uint8_t> keying_material, gcm_key& out,
                          const engine& e);

/// Wipes a key (not optimised away).
void clear_gcm_key(gcm_key& k);

/// One ESP payload to seal or open, in place.
struct gcm_op {
    const gcm_key* key;
    uint8_t* data;       ///< plaintext <-> ciphertext, `len` bytes, overwritten in place
    uint32_t len;        ///< may be 0 (then data may be null)
    const uint8_t* iv8;  ///< 8-byte explicit IV from the ESP packet
    const uint8_t* aad;  ///< 8 bytes: SPI || sequence number, as on the wire
    uint8_t* tag;        ///< 16 bytes; seal: written; open: the received ICV (read only)
};

/// Worker lcore owning `e` (not thread-safe; no allocation, locks, syscalls or exceptions):
/// encrypt each op's data in place and write its ICV to op.tag (one direct ipsec-mb GCM call per
/// op, in order; any number of ops). ok[i] = 1 if op i was sealed, 0 if it was rejected (null
/// pointer, wiped key or a key expanded for another arch); a rejected op's data and tag are
/// unspecified and the other ops
/// are unaffected. ok.size() must be >= ops.size(); if it is shorter only the first ok.size()
/// ops are processed. Returns the number of sealed ops.
uint32_t seal_burst(engine& e, std::span<const gcm_op> ops, std::span<uint8_t> ok);

/// Worker lcore owning `e`, same rules as seal_burst: decrypt each op's data in place and
/// verify op.tag. ok[i] = 1 iff the op was valid and the computed ICV equals op.tag, compared
/// in constant time over all 16 bytes. When ok[i] = 0 the data holds unauthenticated bytes and
/// the packet must be dropped. Returns the number of verified ops.
uint32_t open_burst(engine& e, std::span<const gcm_op> ops, std::span<uint8_t> ok);

} // namespace msecgw::crypto
