// The HTTP exporter: scrapes arrive on prometheus-cpp's threads and wait for the control loop,
// which samples the counters (it owns the SA snapshot) and hands the sample over.
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>

#include "dataplane/dp_state.hh"
#include "families.hh"
#include "metrics.hh"

namespace msecgw::metrics {

namespace {

/// How long a scrape waits for the control loop (it answers within milliseconds unless it is
/// stuck, e.g. in a reload); then the scrape says msecgw_up 0.
constexpr auto answer_timeout = std::chrono::seconds(2);

template <class Sa>
void add_sa(std::vector<sa_sample>& out, const Sa& sa, config::direction dir)
{
    sa_sample s{sa.name, sa.spi, dir, 0, 0};
    for (const auto& lane : sa.lanes) {
        s.packets += lane.pkts;
        s.bytes += lane.bytes;
    }
    out.push_back(std::move(s));
}

} // namespace

std::vector<sa_sample> sa_samples(const dataplane::dp_state& state)
{
    std::vector<sa_sample> out;
    for (const auto& sa : state.out_sas) {
        add_sa(out, *sa, config::direction::out);
    }
    for (const auto& sa : state.in_sas) {
        add_sa(out, *sa, config::direction::in);
    }
    return out;
}

/// Scrape side (HTTP threads) and control side meet here: a scrape raises `pending` and waits
/// for a sample newer than its request.
class collector final : public prometheus::Collectable {
public:
    explicit collector(process_info info) : _info(std::move(info)) {}

    std::vector<prometheus::MetricFamily> Collect() const override
    {
        std::unique_lock lk(_mu);
        const uint64_t want = ++_requested;
        _pending.store(true, std::memory_order_release);
        _cv.wait_for(lk, answer_timeout, [&] { return _served >= want || _closed; });
        return families(_served >= want ? &*_last : nullptr, _info);
    }

    void serve(const std::function<sample()>& take)
    {
        if (!_pending.load(std::memory_order_acquire)) {
            return;
        }
        uint64_t gen = 0;
        {
            std::lock_guard lk(_mu);
            _pending.store(false, std::memory_order_relaxed);
            gen = _requested;
        }
        sample s = take(); // requests from now on raise `pending` again and get the next sample
        {
            std::lock_guard lk(_mu);
            _last = std::move(s);
            _served = gen;
        }
        _cv.notify_all();
    }

    void close()
    {
        {
            std::lock_guard lk(_mu);
            _closed = true;
        }
        _cv.notify_all();
    }

private:
    const process_info _info;
    mutable std::mutex _mu;
    mutable std::condition_variable _cv;
    mutable std::atomic<bool> _pending{false};
    mutable uint64_t _requested = 0;   ///< scrapes asked (guarded by _mu)
    uint64_t _served = 0;              ///< the newest request _last answers
    std::optional<sample> _last;
    bool _closed = false;
};

struct exporter::impl {
    std::shared_ptr<collector> coll;
    std::unique_ptr<prometheus::Exposer> exposer;
};

result<std::unique_ptr<exporter>> exporter::start(const endpoint& ep, process_info info)
{
    std::unique_ptr<exporter> e(new exporter());
    e->_impl = std::make_unique<impl>();
    e->_impl->coll = std::make_shared<collector>(std::move(info));
    try {
        e->_impl->exposer = std::make_unique<prometheus::Exposer>(ep.to_string(), 2);
    } catch (const std::exception& ex) {
        if (auto r = check_bindable(ep); !r) {
            return r.err(); // the precise reason (address in use, cannot assign…)
        }
        return error{errc::io, "--metrics " + ep.to_string() + ": cannot listen: " + ex.what()};
    }
    e->_impl->exposer->RegisterCollectable(e->_impl->coll);
    return e;
}

exporter::~exporter()
{
    if (_impl) {
        _impl->coll->close();  // waiting scrapes return at once
        _impl->exposer.reset(); // joins the HTTP threads
    }
}

void exporter::serve(const std::function<sample()>& take)
{
    _impl->coll->serve(take);
}

} // namespace msecgw::metrics
