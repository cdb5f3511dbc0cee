#pragma once
/// Control-plane owner of the data-plane snapshot (policies + SAs): builds it from
/// configuration, publishes it through RCU (make-before-break: a new snapshot is complete before
/// workers see it, the old one is freed only after every worker passed a quiescent state), and
/// keeps every outbound SA's IV counter blocks reserved and persisted ahead of use (invariant 1).
/// Control core only; not thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hh"
#include "config/config.hh"
#include "crypto/crypto.hh"
#include "dataplane/dp_state.hh"
#include "store/store.hh"

struct rte_rcu_qsbr;

namespace msecgw::control {

class sa_manager {
public:
    /// `workers` lanes are used (<= sa::max_workers); `block` counters per IV reservation.
    static result<std::unique_ptr<sa_manager>> create(std::string state_dir, uint16_t workers,
                                                      uint64_t block = uint64_t{1} << 20);
    ~sa_manager();
    sa_manager(const sa_manager&) = delete;
    sa_manager& operator=(const sa_manager&) = delete;

    /// Builds a snapshot for `cfg` (SAs with unchanged name, SPI, algorithm, key and Sender-ID
    /// are kept with their counters), reserves IV blocks for new outbound SAs, publishes it and
    /// retires the previous one after an RCU grace period. On error nothing changes.
    /// IV counters are stored per (key, Sender-ID) in state_dir (iv-key-<fingerprint>.store, or
    /// iv-key-<fingerprint>-sid<bits>-<id>.store with a Sender-ID); a key whose counters are
    /// stored under another Sender-ID width is refused (the two IV layouts can overlap).
    result<void> apply(const config::gateway_cfg& cfg);

    /// Refills every lane whose pending IV block was taken; marks exhausted lanes and stops SAs
    /// whose store failed (with a logged reason). Call every few milliseconds.
    void tick();

    /// What workers read.
    const std::atomic<const dataplane::dp_state*>* state_ptr() const { return &_state; }
    rte_rcu_qsbr* qsbr() const { return _qsbr; }
    const dataplane::dp_state& current() const { return *_current; }

    /// Wireshark esp_sa lines (key material!) for every SA of the current snapshot.
    std::vector<std::string> keylog_lines(const config::gateway_cfg& cfg) const;

private:
    struct out_entry {
        std::shared_ptr<sa::out_sa> sa;
        std::unique_ptr<store::iv_store> store;
        config::sa_cfg cfg; ///< what it was built from (reuse only when identical)
        uint64_t handed_out = 0;                    ///< counters reserved since install
        std::chrono::steady_clock::time_point born; ///< install time (seconds lifetimes)
        bool soft_logged = false;
    };
    struct in_entry {
        std::shared_ptr<sa::in_sa> sa;
        config::sa_cfg cfg;
        std::chrono::steady_clock::time_point born;
        bool soft_logged = false;
    };

    /// Applies soft (log once) and hard (stop) byte/second/packet lifetimes of one SA.
    template <class Entry>
    void check_lifetime(const std::string& name, Entry& e, uint64_t pkts, uint64_t bytes);

    sa_manager() = default;
    result<std::shared_ptr<sa::out_sa>> out_sa_for(const config::sa_cfg& c, std::map<std::string, out_entry>& next);
    result<std::shared_ptr<sa::in_sa>> in_sa_for(const config::sa_cfg& c, std::map<std::string, in_entry>& next);
    result<void> fill_lane(out_entry& e, uint16_t lane, bool current);
    /// After a failed apply: puts back what was moved out of _out/_in.
    void rollback(std::map<std::string, out_entry>& next_out, std::map<std::string, in_entry>& next_in);
    void publish(std::unique_ptr<dataplane::dp_state> next);

    std::string _state_dir;
    uint16_t _workers = 1;
    uint64_t _block = 0;
    uint32_t _next_uid = 1;
    std::unique_ptr<crypto::engine> _engine; ///< key expansion only
    rte_rcu_qsbr* _qsbr = nullptr;
    std::atomic<const dataplane::dp_state*> _state{nullptr};
    std::unique_ptr<dataplane::dp_state> _current;
    std::map<std::string, out_entry> _out; ///< by SA name
    std::map<std::string, in_entry> _in;
};

} // namespace msecgw::control
