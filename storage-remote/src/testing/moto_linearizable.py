"""moto's S3 API server with every request applied atomically.

moto's `moto_server` (werkzeug, one thread per request) checks `If-Match`
and `If-None-Match` in its response handler and writes the object in a
separate backend call, with no lock between the two: two conditional
PUTs carrying the same ETag can both pass the check, so compare-and-swap
loses updates under concurrency (seen with moto 5.2.5 and plain boto3:
8 threads x 100 increments ended 1-2 short in 2 of 5 runs). Real S3
applies a conditional write atomically. This launcher serves moto's own
application behind one lock, so each request (check and write, and the
response body) happens as one step; everything else is moto unchanged.

Usage: python moto_linearizable.py HOST PORT
"""

import os
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            body = app(environ, start_response)
            try:
                # A lazily produced body could read state after another
                # request changed it: produce it inside the lock.
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

    run_simple(
        host,
        port,
        serialized,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
