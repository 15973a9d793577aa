"""The job store: one owner for the layout and every read and write of a
job's objects (keys, status documents and their transitions, originals,
variants, idempotency records, the failure index). Import from the
submodules (`jobstore.store`, `jobstore.transitions`, ...): `imagepipe.jobs`
uses the keys, and the store uses `imagepipe.jobs`."""
