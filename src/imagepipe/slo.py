"""Facts every part that measures or judges job latency shares, written once:
the consumer's latency histogram, the operator's objective check and rules,
the chart's alerts and the dashboard all import them from here."""

from __future__ import annotations

# Bounds of imagepipe_job_latency_seconds (enqueue → completed). An objective
# must be one of them: the SLI is that bucket over all finished jobs.
LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 40, 60, 120, 300)
# The windows of the SLO's error-ratio recording rules (the multi-window
# burn-rate alerts read pairs of them).
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# The recording rule of the error ratio over one window.
ERROR_RATIO_RECORD = "imagepipe:slo_errors:ratio_rate{window}"
