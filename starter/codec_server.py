"""`python -m starter codec-server`: lets the Temporal UI (and `temporal` CLI) show cases decrypted,
for operators who hold the bearer token, and nobody else.

It speaks Temporal's remote-codec protocol: POST /decode and POST /encode with a JSON body
{"payloads": [...]} (payloads in protobuf JSON). An operator is recognised by either
- `Authorization: Bearer <token>` (the `temporal` CLI's --codec-auth, a UI with single sign-on
  passing its access token), or
- a session cookie set by signing in once at /login with the token (the dev server's UI has no
  sign-on; with "Include cross-origin credentials" on, it sends the cookie). The cookie holds a random
  session id, never the token: HttpOnly, SameSite=Lax, Secure when served over TLS (here or behind a
  proxy that says X-Forwarded-Proto: https), expiring after SESSION_HOURS; POST /logout ends it.
Without either, /decode answers 401 and the UI shows ciphertext.

Nothing a stranger sends can exhaust it: authorisation is checked from the headers before any body is
read; a body must declare its length (0 to MAX_BODY) or it is refused unread; at most MAX_CONNECTIONS
are served at once (more get 503 at once); and each connection has REQUEST_DEADLINE_S to deliver its
whole request, however slowly it trickles, before it is cut.

Standard library (http.server) with those bounds, rather than uvicorn: uvicorn has no deadline for
receiving a request (its timeouts cover idle keep-alive only), so a trickling client holds a connection
there too; the bounds that matter would be ours either way, and the codec is small CPU work.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import secrets
import socket
import ssl
import sys
import threading
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from domain.encryption import EncryptionCodec, EncryptionConfigError, keyring_from_env

COOKIE = "complaints_codec"
MAX_BODY = 8 * 1024 * 1024  # a history page of payloads is far smaller; refuse anything absurd
MAX_LOGIN_BODY = 4096
MAX_CONNECTIONS = 32  # an operator's UI uses a handful; more at once is not an operator
REQUEST_DEADLINE_S = 10.0  # a whole request (TLS handshake, headers, body) arrives within this
LINGER_S, LINGER_BYTES = 1.0, 4 * 1024 * 1024  # after a refusal, see _linger
SESSION_HOURS = 8  # a working day; then sign in again
MAX_SESSIONS = 1000  # the oldest goes first: sign-ins cannot grow the process without bound
DEFAULT_ORIGINS = ("http://127.0.0.1:8233", "http://localhost:8233")
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_LOGIN_PAGE = """<!doctype html><meta charset="utf-8"><title>Complaints codec: sign in</title>
<body style="font-family:sans-serif;max-width:30em;margin:3em auto">
<h1>Decrypt cases in the Temporal UI</h1>
<p>{message}</p>
<form method="post" action="/login"><label>Operator token <input name="token" type="password" autofocus></label>
<button>Sign in</button></form>
<p>Then reload the Temporal UI's page. (The UI `make run` starts is set up for this server; another UI
needs, in its codec settings, this server as the endpoint and "Include cross-origin credentials" on.)</p>
<form method="post" action="/logout"><button>Sign out</button></form></body>"""


class Sessions:
    """Signed-in operators by random session id; each expires, sign-out ends one. Thread-safe."""

    def __init__(self, ttl_s: float = SESSION_HOURS * 3600, limit: int = MAX_SESSIONS) -> None:
        self.ttl_s, self.limit = ttl_s, limit
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        sid = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for old in [s for s, t in self._expiry.items() if t <= now]:
                del self._expiry[old]
            while len(self._expiry) >= self.limit:
                del self._expiry[next(iter(self._expiry))]  # dicts keep insertion order: the oldest
            self._expiry[sid] = now + self.ttl_s
        return sid

    def valid(self, sid: str) -> bool:
        with self._lock:
            expiry = self._expiry.get(sid)
            if expiry is not None and expiry <= time.monotonic():
                del self._expiry[sid]
                expiry = None
        return expiry is not None

    def close(self, sid: str) -> None:
        with self._lock:
            self._expiry.pop(sid, None)


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `slots` of them; one more is told 503 and closed at once."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], slots: int,
                 tls: ssl.SSLContext | None) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(slots)
        self.tls = tls
        if tls is not None:
            # The handshake happens in the connection's own thread, under its deadline, not in accept().
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            if self.tls is None:
                try:
                    request.sendall(_BUSY)
                except OSError:
                    pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class CodecServer:
    def __init__(self, codec: EncryptionCodec, token: str, origins: tuple[str, ...] = DEFAULT_ORIGINS, *,
                 max_connections: int = MAX_CONNECTIONS, request_deadline_s: float = REQUEST_DEADLINE_S,
                 sessions: Sessions | None = None, tls: ssl.SSLContext | None = None) -> None:
        if len(token) < 16:
            raise ValueError("the codec server's token must be at least 16 characters")
        self.codec, self.token, self.origins = codec, token, origins
        self.max_connections, self.request_deadline_s = max_connections, request_deadline_s
        self.sessions = sessions or Sessions()
        self.tls = tls
        self._httpd: ThreadingHTTPServer | None = None

    def authorised(self, headers: Any) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        sid = session_id(headers)
        return sid is not None and self.sessions.valid(sid)

    def transform(self, action: str, body: bytes) -> bytes:
        payloads = json_format.Parse(body, Payloads())
        fn = self.codec.decode if action == "decode" else self.codec.encode
        result = asyncio.run(fn(list(payloads.payloads)))
        return json_format.MessageToJson(Payloads(payloads=result)).encode()

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = server.request_deadline_s  # each socket read or write (StreamRequestHandler applies it)

            _refused = False

            def setup(self) -> None:
                super().setup()
                # However slowly a client trickles bytes, its connection ends at the deadline.
                self._cutoff = threading.Timer(server.request_deadline_s, self._cut)
                self._cutoff.daemon = True
                self._cutoff.start()
                if isinstance(self.connection, ssl.SSLSocket):
                    try:
                        self.connection.do_handshake()
                    except (OSError, ssl.SSLError):
                        self.close_connection = True
                        self.rfile = _Empty()

            def _cut(self) -> None:
                try:  # the plain socket's shutdown, also under TLS: the reading thread sees EOF
                    socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
                except OSError:
                    pass

            def finish(self) -> None:
                try:
                    super().finish()
                    if self._refused:
                        self._linger()
                except OSError:
                    pass  # the client went, or was cut off
                finally:
                    self._cutoff.cancel()

            def _linger(self) -> None:
                """Let a client still sending a refused body see the answer: close our side, then take
                and drop at most LINGER_BYTES for LINGER_S (closing on unread data would reset the
                connection, and the answer with it)."""
                socket.socket.shutdown(self.connection, socket.SHUT_WR)
                self.connection.settimeout(LINGER_S)
                end, left = time.monotonic() + LINGER_S, LINGER_BYTES
                while left > 0 and time.monotonic() < end:
                    chunk = self.connection.recv(min(left, 65536))
                    if not chunk:
                        return
                    left -= len(chunk)

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
                pass  # request lines carry no personal data, but no need for the noise either

            def _secure(self) -> bool:
                return server.tls is not None or self.headers.get("X-Forwarded-Proto", "").lower() == "https"

            def _cors(self) -> None:
                origin = self.headers.get("Origin")
                if origin in server.origins:
                    self.send_header("Access-Control-Allow-Origin", origin)
                    self.send_header("Access-Control-Allow-Credentials", "true")
                    self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
                    self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                    self.send_header("Vary", "Origin")

            def _reply(self, status: HTTPStatus, body: bytes, ctype: str = "application/json",
                       extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self._cors()
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                if status >= 400:
                    self.send_header("Connection", "close")  # an unread body may follow: never parse it
                    self.close_connection = self._refused = True
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: HTTPStatus, message: str) -> None:
                self._reply(status, f'{{"error":"{message}"}}'.encode())

            def _page(self, status: HTTPStatus, message: str, cookie: str | None = None) -> None:
                self._reply(status, _LOGIN_PAGE.format(message=message).encode(), "text/html; charset=utf-8",
                            {"Set-Cookie": cookie} if cookie else None)

            def _body(self, limit: int) -> bytes | None:
                """The body, if it declares a length from 0 to `limit` and arrives whole; else refused unread."""
                if self.headers.get("Transfer-Encoding"):
                    self._error(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
                    return None
                declared = set(self.headers.get_all("Content-Length") or [])
                if not declared:
                    self._error(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
                    return None
                raw = declared.pop() if len(declared) == 1 else ""
                if not raw.isdigit():  # negative, not a number, or several different lengths
                    self._error(HTTPStatus.BAD_REQUEST, "Content-Length must be one whole number")
                    return None
                length = int(raw)
                if length > limit:
                    self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
                    return None
                body = self.rfile.read(length)
                if len(body) != length:  # the client went, or ran out of time
                    self.close_connection = True
                    return None
                return body

            def _cookie(self, value: str, max_age: int) -> str:
                return (f"{COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}"
                        + ("; Secure" if self._secure() else ""))

            def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
                self._reply(HTTPStatus.NO_CONTENT, b"")

            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?")[0] in ("/", "/login"):
                    self._page(HTTPStatus.OK, "Enter the operator token you were given.")
                elif self.path == "/health":
                    self._reply(HTTPStatus.OK, b'{"ok":true}')
                else:
                    self._error(HTTPStatus.NOT_FOUND, "not found")

            def do_POST(self) -> None:  # noqa: N802
                path = self.path.split("?")[0].rstrip("/")
                if path == "/login":
                    self._login()
                    return
                if path == "/logout":
                    sid = session_id(self.headers)
                    if sid is not None:
                        server.sessions.close(sid)
                    self._page(HTTPStatus.OK, "Signed out.", self._cookie("", 0))
                    return
                action = path.rsplit("/", 1)[-1]
                if action not in ("decode", "encode"):
                    self._error(HTTPStatus.NOT_FOUND, "not found")
                    return
                if not server.authorised(self.headers):  # from the headers alone: the body is never read
                    self._error(HTTPStatus.UNAUTHORIZED, "a valid bearer token or sign-in is required")
                    return
                body = self._body(MAX_BODY)
                if body is None:
                    return
                try:
                    self._reply(HTTPStatus.OK, server.transform(action, body))
                except (json_format.ParseError, EncryptionConfigError, ValueError) as exc:
                    self._error(HTTPStatus.BAD_REQUEST, type(exc).__name__)
                except Exception:  # say no more about a payload that would not open
                    self._error(HTTPStatus.BAD_REQUEST, "payload could not be decrypted")

            def _login(self) -> None:
                body = self._body(MAX_LOGIN_BODY)
                if body is None:
                    return
                token = (parse_qs(body.decode(errors="replace")).get("token") or [""])[0]
                if not hmac.compare_digest(token.encode(), server.token.encode()):
                    self._page(HTTPStatus.UNAUTHORIZED, "That token is not right.")
                    return
                cookie = self._cookie(server.sessions.open(), int(server.sessions.ttl_s))
                self._page(HTTPStatus.OK, "Signed in: the UI can now decrypt cases.", cookie)

        self._httpd = _BoundedServer((host, port), Handler, self.max_connections, self.tls)
        return self._httpd

    def start_in_background(self, host: str = "127.0.0.1", port: int = 0) -> int:
        httpd = self.serve(host, port)
        threading.Thread(target=httpd.serve_forever, daemon=True, name="codec-server").start()
        return httpd.server_address[1]

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


class _Empty:
    """Stands in for a connection's input once its TLS handshake failed: nothing more is read."""

    def readline(self, *_: Any) -> bytes:
        return b""

    def read(self, *_: Any) -> bytes:
        return b""


def session_id(headers: Any) -> str | None:
    try:
        jar = SimpleCookie(headers.get("Cookie", ""))
    except CookieError:
        return None
    return jar[COOKIE].value if COOKIE in jar and jar[COOKIE].value else None


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise EncryptionConfigError("--tls-cert and --tls-key go together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise EncryptionConfigError(f"cannot load the TLS certificate and key: {exc}") from None
    return ctx


def read_token(token_file: str | None) -> str:
    if token_file:
        try:
            return Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise EncryptionConfigError(f"--token-file: cannot read {token_file}: {exc.strerror}") from None
    token = os.environ.get("COMPLAINTS_CODEC_TOKEN", "")
    if not token:
        raise EncryptionConfigError("no operator token: set COMPLAINTS_CODEC_TOKEN or pass --token-file")
    return token


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("codec-server", help="serve decryption to the Temporal UI for operators with a token")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("COMPLAINTS_CODEC_PORT", "8888")))
    p.add_argument("--token-file", help="file holding the operator token (default: COMPLAINTS_CODEC_TOKEN)")
    p.add_argument("--ui-origin", action="append", help="a UI origin allowed by CORS (repeatable)")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM); the sign-in cookie is then Secure")
    p.add_argument("--tls-key", help="the certificate's private key (PEM)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        keyring = keyring_from_env()
        if keyring is None:
            raise EncryptionConfigError("no encryption keys: set COMPLAINTS_ENCRYPTION_KEYS_FILE or "
                                        "COMPLAINTS_ENCRYPTION_KEY")
        server = CodecServer(EncryptionCodec(keyring), read_token(args.token_file),
                             tuple(args.ui_origin or DEFAULT_ORIGINS), tls=tls_context(args.tls_cert, args.tls_key))
        httpd = server.serve(args.host, args.port)
    except (EncryptionConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    scheme = "https" if server.tls else "http"
    print(f"codec server on {scheme}://{args.host}:{httpd.server_address[1]} (sign in at /login)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0
