"""Typed errors with stable codes.

Every error a client or a job can meet carries a code from docs/design.md (it
appears in `error.code` and in metric labels) and a message for humans.
`status` is the HTTP status the ingest answers with; the consumer uses
`permanent` to decide between failing a job at once and retrying it.
"""

from __future__ import annotations


class ImagePipeError(Exception):
    """Base of every error that maps to a stable code."""

    code = "internal"
    status = 500
    # A permanent error cannot succeed on retry (a bad image); others may.
    permanent = True
    # Seconds a client should wait before retrying (the Retry-After header); None: no advice.
    retry_after: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class UnsupportedFormat(ImagePipeError):
    code = "unsupported_format"
    status = 415


class CorruptImage(ImagePipeError):
    code = "corrupt_image"
    status = 422


class TooManyPixels(ImagePipeError):
    code = "too_many_pixels"
    status = 413


class TooComplex(ImagePipeError):
    """A file whose layout would cost a decoder far more than its pixels do."""

    code = "too_complex"
    status = 422


class TooLarge(ImagePipeError):
    code = "too_large"
    status = 413


class EmptyUpload(ImagePipeError):
    code = "empty_upload"
    status = 400


class UploadTimeout(ImagePipeError):
    code = "request_timeout"
    status = 408


class BadRequest(ImagePipeError):
    code = "bad_request"
    status = 400


class InvalidSpec(ImagePipeError):
    """A variant spec or pipelines file that cannot be used."""

    code = "invalid_spec"
    status = 400


class OriginalMissing(ImagePipeError):
    """A job whose original is gone (deleted, or expired): it can never succeed."""

    code = "not_found"
    status = 404


class Overloaded(ImagePipeError):
    """The ingest's upload budget has no room (service/budget.py): retry shortly."""

    code = "overloaded"
    status = 503
    permanent = False

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(ImagePipeError):
    """One API key sent more than its share (service/ratelimit.py)."""

    code = "rate_limited"
    status = 429
    permanent = False

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(ImagePipeError):
    code = "deadline_exceeded"
    status = 504
    permanent = False


# Seconds a client should wait after a backend outage.
BACKEND_RETRY_AFTER_SECONDS = 5


class BackendUnavailable(ImagePipeError):
    """S3 or SQS failed or did not answer in time; the cause is chained."""

    code = "backend_unavailable"
    status = 503
    permanent = False
    retry_after = BACKEND_RETRY_AFTER_SECONDS


class IdempotencyInProgress(ImagePipeError):
    """Another request holds this Idempotency-Key and has not finished its job yet."""

    code = "idempotency_in_progress"
    status = 409
    permanent = False
    retry_after = 1


# The codes a bad image can earn, at upload or in its job: their metric series
# are created at start-up (rate() cannot see the event that creates a series).
IMAGE_ERROR_CODES = tuple(
    error.code for error in (UnsupportedFormat, CorruptImage, TooComplex, TooManyPixels, TooLarge)
)
