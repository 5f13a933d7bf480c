"""The dev server's Temporal UI, served with the codec settings `temporal server start-dev` cannot set.

`start-dev` takes `--ui-codec-endpoint` but builds the UI server's codec settings with that endpoint
alone: "include cross-origin credentials" stays off, so the browser never sends the codec server's
sign-in cookie and every case page says "Codec Server could not connect" until each operator overrides
the setting by hand in their browser. A production UI server sets `codec.includeCredentials` (and an
error message with a link) in its config (deploy/compose: TEMPORAL_CODEC_INCLUDE_CREDENTIALS);
start-dev has no such setting, so this small reverse proxy stands where `make run` publishes the UI and
changes only the UI's settings answer (`/api/v1/settings`) on the way through. Everything else passes
untouched.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# Connection-level headers: they describe one hop, never what is passed on (RFC 9110, 7.6.1).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"})
SETTINGS_PATH = "/api/v1/settings"


@dataclass(frozen=True)
class CodecSettings:
    """What the UI should use to decrypt: the codec server's port, and where operators sign in."""

    port: int
    login_path: str = "/login"

    def for_host(self, browser_host: str) -> tuple[str, str]:
        """The endpoint and sign-in link under the name the browser used for the UI (127.0.0.1 or
        localhost): the sign-in cookie is then same-site with the UI, so the browser sends it."""
        host = urlsplit(f"http://{browser_host}").hostname or "127.0.0.1"
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        endpoint = f"http://{host}:{self.port}"
        return endpoint, endpoint + self.login_path


def with_codec(settings: dict[str, Any], codec: CodecSettings, browser_host: str) -> dict[str, Any]:
    endpoint, login = codec.for_host(browser_host)
    current = settings.get("Codec") or {}
    settings["Codec"] = {
        **current,
        "Endpoint": endpoint,
        "IncludeCredentials": True,  # send the sign-in cookie to the codec server
        # Shown in the UI's red banner instead of "Codec Server could not connect", with the link.
        "DefaultErrorMessage": "Residents' data is encrypted. Sign in to the codec server with your "
                               "operator token to read it, then reload this page:",
        "DefaultErrorLink": login,
    }
    return settings


class UiProxy:
    def __init__(self, upstream_host: str, upstream_port: int, codec: CodecSettings) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.codec = codec
        self._httpd: ThreadingHTTPServer | None = None

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep the browser's connections open, as the UI server does

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                is_settings = self.path.split("?", 1)[0].rstrip("/") == SETTINGS_PATH
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if is_settings:  # read it as plain JSON to change it
                    headers = {k: v for k, v in headers.items() if k.lower() != "accept-encoding"}
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                try:
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                    except OSError:
                        self._send(502, [("Content-Type", "text/plain")], b"the Temporal UI is not answering")
                        return
                    if is_settings and resp.status == 200:
                        host = self.headers.get("Host") or "127.0.0.1"
                        data = json.dumps(with_codec(json.loads(data), proxy.codec, host)).encode()
                    kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
                    self._send(resp.status, kept, data)
                finally:
                    conn.close()

            def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response_only(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward  # noqa: N815

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        return self._httpd

    def start_in_background(self, host: str, port: int) -> int:
        httpd = self.serve(host, port)
        threading.Thread(target=httpd.serve_forever, daemon=True, name="ui-proxy").start()
        return int(httpd.server_address[1])

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
