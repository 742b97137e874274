"""A marketing site and a flaky proxy on 127.0.0.1, for the browser tracking test.

The site serves tests/browser_site (pages, site.js) and analytics-next's own UMD bundle from
tests/browser_site/node_modules (installed by scripts/install-test-deps.sh): no CDN.

The proxy stands between the browser and the service, as a load balancer would, and makes
every message go through the failures the SDK must survive: the first request carrying a
message is answered 503 without reaching the service; the next one reaches the service but
its answer is replaced by a 503 (stored, yet the browser must retry: the retry must be a
duplicate); later ones pass. Its 503s carry CORS headers, as the service's own do.
"""

from __future__ import annotations

import mimetypes
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

SITE_DIR = Path(__file__).resolve().parent / "browser_site"
BUNDLE_DIR = SITE_DIR / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
# RudderStack's "bundled" build: every plugin inside, none fetched from its CDN.
RUDDER_DIR = SITE_DIR / "node_modules" / "@rudderstack" / "analytics-js" / "dist" / "npm"
RUDDER_DIR = RUDDER_DIR / "modern" / "bundled" / "esm"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def message_ids(body: bytes) -> list[str]:
    """The messageIds a tracking request carries (single message or batch)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(data, dict):
        return []
    batch = data.get("batch")
    messages = batch if isinstance(batch, list) else [data]
    return [str(m["messageId"]) for m in messages if isinstance(m, dict) and "messageId" in m]


@dataclass
class ProxyLog:
    seen: Counter[str] = field(default_factory=Counter)  # attempts per messageId
    refused: int = 0
    lost_answers: int = 0
    passed: int = 0
    retry_headers: list[str] = field(default_factory=list)
    answers: list[tuple[str, int, bytes]] = field(default_factory=list)  # from the service
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, ids: list[str]) -> str:
        with self.lock:
            attempts = [self.seen[i] for i in ids]
            self.seen.update(ids)
            if not ids:
                return "pass"
            if min(attempts) == 0:
                self.refused += 1
                return "refuse"
            if min(attempts) == 1:
                self.lost_answers += 1
                return "lose"
            self.passed += 1
            return "pass"


def _handler(target: str, log: ProxyLog) -> type[BaseHTTPRequestHandler]:
    client = httpx.Client(base_url=target, timeout=30)

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self, body: bytes) -> httpx.Response:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            return client.request(self.command, self.path, content=body, headers=headers)

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _unavailable(self) -> None:
            origin = self.headers.get("Origin")
            cors = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")] if origin else []
            self._answer(503, [("Content-Type", "text/plain"), *cors], b"try again")

        def do_OPTIONS(self) -> None:
            answer = self._forward(b"")
            self._answer(answer.status_code, list(answer.headers.multi_items()), answer.content)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            retry = self.headers.get("X-Retry-Count")
            if retry is not None:
                with log.lock:
                    log.retry_headers.append(retry)
            decision = log.decide(message_ids(body) if "/v1/" in self.path else [])
            if decision == "refuse":
                self._unavailable()
                return
            answer = self._forward(body)
            with log.lock:
                log.answers.append((self.path, answer.status_code, answer.content[:300]))
            if decision == "lose":
                self._unavailable()
                return
            self._answer(answer.status_code, list(answer.headers.multi_items()), answer.content)

    return Proxy


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    config_js = b""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/config.js":
            body, kind = self.config_js, "text/javascript"
        else:
            if path.startswith("/ajs/"):
                file = BUNDLE_DIR / path.removeprefix("/ajs/")
            elif path.startswith("/rs/"):
                file = RUDDER_DIR / path.removeprefix("/rs/")
            else:
                file = SITE_DIR / path.lstrip("/")
            if ".." in path or not file.is_file() or "node_modules" in path:
                self.send_error(404)
                return
            body = file.read_bytes()
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the browser closing a connection mid-answer (page unload) is no failure


@contextmanager
def _serve(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def flaky_proxy(target: str) -> Iterator[tuple[str, ProxyLog]]:
    log = ProxyLog()
    with _serve(_Server(("127.0.0.1", 0), _handler(target, log))) as url:
        yield url, log


@contextmanager
def marketing_site(port: int, write_key: str, api_url: str) -> Iterator[str]:
    """The site on ``port`` (its origin must be known before the service starts), sending
    to ``api_url`` (the service's, or its proxy's, base URL)."""
    config = {
        "writeKey": write_key,
        "apiHost": f"{api_url.removeprefix('http://')}/v1",  # Segment: host and path
        "dataPlaneUrl": api_url,  # RudderStack: it adds /v1/<type> itself
    }
    handler = type("Site", (_Site,), {"config_js": b"window.SITE_CONFIG = " + orjson.dumps(config)})
    with _serve(_Server(("127.0.0.1", port), handler)) as url:
        yield url


def bundles_present() -> bool:
    return (BUNDLE_DIR / "index.js").is_file() and (RUDDER_DIR / "index.mjs").is_file()


mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
