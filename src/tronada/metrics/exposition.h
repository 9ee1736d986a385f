// The Prometheus text format (0.0.4) and OpenMetrics 1.0, written by hand: a few lines
// of format, checked against the real parser (python3-prometheus-client) in the tests.
#pragma once

#include <string>
#include <string_view>

#include "tronada/metrics/process_stats.h"
#include "tronada/metrics/shared_region.h"

namespace tronada::metrics {

enum class Format { prometheus, openmetrics };

/// OpenMetrics when the scraper's Accept names application/openmetrics-text (as
/// Prometheus does when it prefers it), else the classic text format.
Format negotiate(std::string_view accept);

/// The Content-Type of a body in `format`.
std::string_view content_type(Format format);

/// A label value escaped for either format: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);

/// A sample value: integers as such, others in the shortest form that reads back
/// exactly; +Inf as "+Inf".
std::string format_number(double value);

/// The whole /metrics body: the request counters and histograms per route, the
/// connection gauges, the processes' state and the standard process_* metrics.
/// `ready` is what /readyz answers now.
std::string render(const Snapshot& snapshot, const ProcessStats& process, bool ready,
                   Format format);

}  // namespace tronada::metrics
