#pragma once
/// Internal: the msecgw_* metric families of one sample (docs/observing.md lists each).

#include <prometheus/metric_family.h>

#include <vector>

#include "metrics.hh"

namespace msecgw::metrics {

/// Families for a scrape. `s` null: the control core did not answer in time; only the process
/// facts and msecgw_up 0 are reported.
std::vector<prometheus::MetricFamily> families(const sample* s, const process_info& info);

} // namespace msecgw::metrics
