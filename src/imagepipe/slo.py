"""Facts every part that measures or judges job latency shares, written once:
the consumer's latency histogram, the operator's objective check and rules,
the chart's alerts and the dashboard all import them from here."""

from __future__ import annotations

# Bounds of imagepipe_job_latency_seconds (enqueue → completed). An objective
# must be one of them: the SLI is that bucket over all finished jobs.
LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 40, 60, 120, 300)
