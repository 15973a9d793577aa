"""The consumer suites' fixtures (a pipeline's backends, consumer processes)
for the whole-stack tests that race ingest and consumer processes."""

from tests.consumer.conftest import consumers, stack

__all__ = ["consumers", "stack"]
