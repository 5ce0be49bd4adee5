"""A small web app that counts its requests and exports the count for Prometheus.

It serves ``GET /`` (counted in ``http_requests_total``) and ``GET /metrics`` (the
Prometheus text format), on ``$PINCOMPUTE_POD_IP`` (or 127.0.0.1) and the port
given as its only argument.  With ``--push`` it also pushes its samples every
second to its node's metrics endpoint (``$PINCOMPUTE_METRICS_URL``), the other
way an app's metrics reach PinScaler; scraping (the pod annotation
``metrics.pincompute.io/port``) needs nothing from the app.

Standard library only: it runs under any python3 a node has.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_count = 0
_lock = threading.Lock()


def exposition() -> bytes:
    with _lock:
        count = _count
    return (b"# HELP http_requests_total Requests served.\n"
            b"# TYPE http_requests_total counter\n"
            + f"http_requests_total {count}\n".encode())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        global _count
        if self.path == "/metrics":
            body = exposition()
        else:
            with _lock:
                _count += 1
            body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def push_forever(url: str) -> None:
    while True:
        try:
            request = urllib.request.Request(url, data=exposition(), method="POST")
            urllib.request.urlopen(request, timeout=2).close()
        except OSError as exc:
            print(f"push failed: {exc}", file=sys.stderr, flush=True)
        time.sleep(1.0)


def main() -> None:
    port = int(sys.argv[1])
    host = os.environ.get("PINCOMPUTE_POD_IP", "127.0.0.1")
    if "--push" in sys.argv and os.environ.get("PINCOMPUTE_METRICS_URL"):
        threading.Thread(target=push_forever, args=(os.environ["PINCOMPUTE_METRICS_URL"],),
                         daemon=True).start()
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"serving on {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
