"""Every series a deployed role exports carries `imagepipeline="NAMESPACE/NAME"`."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from imagepipe.config import ConfigError, load_settings
from imagepipe.exposition import RESOURCE_LABEL, exposed
from imagepipe.service.metrics import IngestMetrics


def registry() -> CollectorRegistry:
    r = CollectorRegistry()
    Counter("jobs", "jobs", ["pipeline"], registry=r).labels("default").inc()
    Histogram("latency", "latency", buckets=(1, 30), registry=r).observe(2)
    return r


def test_every_sample_gets_the_label_and_keeps_its_own() -> None:
    text = generate_latest(exposed(registry(), "media/photos")).decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert len(samples) >= 6  # the counter, its created, the buckets, sum, count
    assert all(s.labels[RESOURCE_LABEL] == "media/photos" for s in samples)
    assert 'jobs_total{imagepipeline="media/photos",pipeline="default"} 1.0' in text


def test_outside_an_imagepipeline_nothing_is_added() -> None:
    r = registry()
    assert exposed(r, "") is r


def test_the_ingest_exports_it() -> None:
    text = IngestMetrics(CollectorRegistry(), "media/photos").render().decode()
    assert 'imagepipe_uploads_rejected_total{code="too_large",imagepipeline="media/photos"} 0.0' in text


@pytest.mark.parametrize("value", ["photos", "Media/photos", "a/b/c", "/photos"])
def test_a_bad_value_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="IMAGEPIPE_IMAGEPIPELINE"):
        load_settings({"IMAGEPIPE_IMAGEPIPELINE": value}, need_backends=False)
    assert load_settings({"IMAGEPIPE_IMAGEPIPELINE": "media/photos"}, need_backends=False).imagepipeline
