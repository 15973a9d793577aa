"""Read an upload body, multipart (`file` and optional `pipeline` fields) or raw
(an image Content-Type), never holding more than the byte cap in memory, and
every byte held charged to the upload budget (service/budget.py) first.

`Expect: 100-continue` is answered here, once the upload is authenticated,
within its key's rate and charged: until then the client has sent no body.

The client's Content-Type only chooses the framing; what the bytes are is
decided later by libmagic and the header probe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from imagepipe.errors import BadRequest, EmptyUpload, TooLarge, UnsupportedFormat
from imagepipe.service.budget import Charge
from imagepipe.service.errors import ApiError

CHUNK = 64 * 1024
# Room for the multipart envelope (boundaries, part headers, small fields)
# on top of the image itself when judging a declared Content-Length.
MULTIPART_ALLOWANCE = 64 * 1024
MAX_FIELD_BYTES = 1024
MAX_PARTS = 8
RAW_TYPES = ("image/", "application/octet-stream")


@dataclass(frozen=True)
class Upload:
    data: bytes
    # The `pipeline` form field, when the body had one.
    pipeline: str | None
    # The `focus` form field (`x,y`, unparsed), when the body had one.
    focus: str | None = None


def is_multipart(request: web.Request) -> bool:
    return request.content_type.startswith("multipart/")


def too_large(cap: int) -> TooLarge:
    return TooLarge(f"the upload is larger than the limit of {cap} bytes")


def check_declared_length(request: web.Request, cap: int) -> None:
    """Refuse a declared Content-Length over the cap before reading any of the body."""
    allowed = cap + (MULTIPART_ALLOWANCE if is_multipart(request) else 0)
    length = request.content_length
    if length is not None and length > allowed:
        raise too_large(cap)


def check_expect(request: web.Request) -> None:
    expect = request.headers.get("Expect")
    if expect is not None and expect.strip().lower() != "100-continue":
        raise ApiError(417, "bad_request", "only Expect: 100-continue is supported")


async def _send_continue(request: web.Request) -> None:
    if request.headers.get("Expect", "").strip().lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def read_upload(request: web.Request, cap: int, charge: Charge) -> Upload:
    check_declared_length(request, cap)
    if request.content_length:
        # A multipart envelope (at most MULTIPART_ALLOWANCE) is left to the base.
        await charge.cover(min(request.content_length, cap))
    if not is_multipart(request) and not request.content_type.startswith(RAW_TYPES):
        raise UnsupportedFormat(
            "send multipart/form-data with a `file` field, or the image itself with an image/* Content-Type"
        )
    await _send_continue(request)
    if is_multipart(request):
        return await _read_multipart(request, cap, charge)
    data = await _read_capped(request.content.iter_chunked(CHUNK), cap, charge)
    if not data:
        raise EmptyUpload("the upload is empty")
    return Upload(data, None)


async def _read_capped(chunks: AsyncIterator[bytes], cap: int, charge: Charge | None = None) -> bytes:
    buffer = bytearray()
    async for chunk in chunks:
        if len(buffer) + len(chunk) > cap:
            raise too_large(cap)
        if charge is not None:
            # Undeclared (chunked) bodies, and decoded bytes beyond a declared length.
            await charge.cover(len(buffer) + len(chunk))
        buffer += chunk
    return bytes(buffer)


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def _read_field(part: BodyPartReader) -> str:
    if part.filename is not None:
        raise BadRequest(f"form field {part.name!r} holds a file: the image goes in the form field 'file'")
    try:
        data = await _read_capped(_part_chunks(part), MAX_FIELD_BYTES)
    except TooLarge as exc:
        raise BadRequest(
            f"form field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes "
            "(the image goes in the form field 'file')"
        ) from exc
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest(f"form field {part.name!r} is not UTF-8 text") from exc


async def _read_multipart(request: web.Request, cap: int, charge: Charge) -> Upload:
    data: bytes | None = None
    pipeline: str | None = None
    focus: str | None = None
    try:
        reader = await request.multipart()
        for _ in range(MAX_PARTS + 1):
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            if part.name == "file" and data is not None:
                raise BadRequest("one file per upload: the body has a second 'file' field")
            if part.name == "file":
                data = await _read_capped(_part_chunks(part), cap, charge)
            elif part.name == "pipeline" and pipeline is None:
                pipeline = (await _read_field(part)).strip()
            elif part.name == "focus" and focus is None:
                focus = (await _read_field(part)).strip()
            else:
                # Unknown or repeated text fields are read (boundedly) and ignored.
                await _read_field(part)
        else:
            raise BadRequest(f"too many form fields (at most {MAX_PARTS})")
    except (ValueError, AssertionError, RuntimeError, HttpProcessingError) as exc:
        # The parser's message may quote the client's bytes: name the problem only.
        raise BadRequest(f"malformed multipart body ({type(exc).__name__})") from exc
    if data is None:
        raise BadRequest("the multipart body has no `file` field")
    if not data:
        raise EmptyUpload("the `file` field is empty")
    return Upload(data, pipeline, focus)
