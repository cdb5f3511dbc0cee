#pragma once
/// Manifest signing off the workers (docs/source-auth.md "Manifests"): a worker writes a due
/// manifest unsigned into an mbuf already framed as group ESP and hands it to one signing thread
/// through its own rte_ring (single producer, single consumer); the thread signs it in place with
/// OpenSSL (which allocates: never on a worker) and hands it back through a second ring; the
/// worker numbers, seals and sends it on a later poll. The worker neither waits nor allocates: a
/// lane with sign_lane::depth - 1 manifests in flight leaves the next one pending (its packets keep
/// being tagged, up to 2N digests). The thread sleeps when there is nothing to sign.

#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "common/result.hh"
#include "crypto/crypto.hh"

struct rte_mbuf;

namespace msecgw::dataplane {

struct auth_sender;

/// One manifest on its way: written by the worker, signed by the thread (ok), sent by the worker.
struct sign_job {
    rte_mbuf* m = nullptr;
    auth_sender* snd = nullptr;
    uint8_t* manifest = nullptr; ///< inside m: the ESP payload
    uint32_t len = 0;
    uint8_t* esph = nullptr;     ///< inside m: the ESP header, written when the worker numbers it
    uint32_t cipher_len = 0;
    uint8_t ok = 0;              ///< written by the signing thread before it hands the job back
};

/// A worker's rings to and from the signing thread and its jobs, used in ring order (the thread
/// handles a lane's jobs in order, so a job's slot is free again once the worker got it back).
struct sign_lane {
    static constexpr uint32_t depth = 64;
    rte_ring* to_sign = nullptr; ///< worker -> thread
    rte_ring* signed_back = nullptr; ///< thread -> worker
    std::array<sign_job, depth> jobs{};
    uint32_t next = 0;      ///< worker: the next free job
    uint32_t in_flight = 0; ///< worker: jobs handed over and not back yet
};

/// The signing thread (named "msecgw-signer") and one lane per worker.
class manifest_signer {
public:
    static result<std::unique_ptr<manifest_signer>> create(uint16_t lanes);
    manifest_signer(const manifest_signer&) = delete;
    manifest_signer& operator=(const manifest_signer&) = delete;
    ~manifest_signer(); ///< stops the thread; the workers must have stopped

    sign_lane& lane(uint16_t i) { return *_lanes[i]; }
    void start();
    /// After the workers stopped (they wait for their jobs to come back first).
    void stop();

private:
    manifest_signer() = default;
    void run();

    std::vector<std::unique_ptr<sign_lane>> _lanes;
    std::unique_ptr<crypto::engine> _engine;
    std::atomic<bool> _stop{false};
    std::thread _thread;
};

} // namespace msecgw::dataplane
