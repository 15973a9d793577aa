"""The ingest service (`imagepipe serve`): the aiohttp upload API that streams
uploads with a size cap, sniffs and probes them, stores originals in S3,
writes job status documents and enqueues jobs on SQS."""
