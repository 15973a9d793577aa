"""An S3 look-alike over HTTP for the failures real servers were seen to
have: `forgetful` answers 200 to every configuration write and stores
nothing; `unimplemented` answers 501 to configuration calls; `refuses-deletes`
lists one key and refuses it in a DeleteObjects answered 200 (as S3 does for a
key the caller may not delete). In every mode a PutObject is answered 200
whatever its If-None-Match or If-Match (as s3rver and fauxqs were seen to do).
Buckets exist, objects do not matter."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LISTED_KEY = "variants/job/spec/thumbnail.webp"
LISTING = (
    "<ListBucketResult><Name>b</Name><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>"
    f"<Contents><Key>{LISTED_KEY}</Key><Size>1</Size></Contents></ListBucketResult>"
)
REFUSED = f"<DeleteResult><Error><Key>{LISTED_KEY}</Key><Code>AccessDenied</Code></Error></DeleteResult>"
# Configuration sub-resource → the error S3 gives when a bucket has none.
ABSENT = {
    "lifecycle": "NoSuchLifecycleConfiguration",
    "policy": "NoSuchBucketPolicy",
    "tagging": "NoSuchTagSet",
    "publicAccessBlock": "NoSuchPublicAccessBlockConfiguration",
}


def handler_for(mode: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1, so that the SDK's `Expect: 100-continue` on PutObject is answered.
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, code: str = "", xml: str = "") -> None:
            body = (
                f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
                if code
                else xml.encode()
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _sub_resource(self) -> str | None:
            query = urlsplit(self.path).query
            return next((name for name in ABSENT if name in query.split("&")), None)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            sub = self._sub_resource()
            query = urlsplit(self.path).query.split("&")
            if mode == "refuses-deletes" and "list-type=2" in query:
                self._answer(200, xml=LISTING)
            elif mode == "refuses-deletes" and "delete" in query:
                self._answer(200, xml=REFUSED)
            elif sub is None:
                self._answer(200)
            elif mode == "unimplemented":
                self._answer(501, "NotImplemented")
            elif self.command == "GET":
                self._answer(404, ABSENT[sub])
            else:
                self._answer(200 if self.command == "PUT" else 204)

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _handle

    return Handler


@contextmanager
def fake_s3(mode: str) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(mode))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
