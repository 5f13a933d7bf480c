"""`python -m starter codec-server`: lets the Temporal UI (and `temporal` CLI) show cases decrypted,
for operators who hold the bearer token, and nobody else.

It speaks Temporal's remote-codec protocol: POST /decode and POST /encode with a JSON body
{"payloads": [...]} (payloads in protobuf JSON). An operator is recognised by either
- `Authorization: Bearer <token>` (the `temporal` CLI's --codec-auth, a UI with single sign-on
  passing its access token), or
- a cookie set by signing in once at /login with the same token (the dev server's UI has no sign-on;
  with "Include cross-origin credentials" on, it sends the cookie).
Without either, /decode answers 401 and the UI shows ciphertext.

Standard library only (http.server): the codec is CPU work, a threaded server is plenty.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import sys
import threading
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from domain.encryption import EncryptionCodec, EncryptionConfigError, keyring_from_env

COOKIE = "complaints_codec"
MAX_BODY = 8 * 1024 * 1024  # a history page of payloads is far smaller; refuse anything absurd
DEFAULT_ORIGINS = ("http://127.0.0.1:8233", "http://localhost:8233")
_LOGIN_PAGE = """<!doctype html><meta charset="utf-8"><title>Complaints codec: sign in</title>
<body style="font-family:sans-serif;max-width:30em;margin:3em auto">
<h1>Decrypt cases in the Temporal UI</h1>
<p>{message}</p>
<form method="post" action="/login"><label>Operator token <input name="token" type="password" autofocus></label>
<button>Sign in</button></form>
<p>Then, in the Temporal UI's codec settings, set the endpoint to this server and turn on
"Include cross-origin credentials".</p></body>"""


class CodecServer:
    def __init__(self, codec: EncryptionCodec, token: str, origins: tuple[str, ...] = DEFAULT_ORIGINS) -> None:
        if len(token) < 16:
            raise ValueError("the codec server's token must be at least 16 characters")
        self.codec, self.token, self.origins = codec, token, origins
        self._httpd: ThreadingHTTPServer | None = None

    def authorised(self, headers: Any) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        jar = SimpleCookie(headers.get("Cookie", ""))
        return COOKIE in jar and hmac.compare_digest(jar[COOKIE].value.encode(), self.token.encode())

    def transform(self, action: str, body: bytes) -> bytes:
        payloads = json_format.Parse(body, Payloads())
        fn = self.codec.decode if action == "decode" else self.codec.encode
        result = asyncio.run(fn(list(payloads.payloads)))
        return json_format.MessageToJson(Payloads(payloads=result)).encode()

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
                pass  # request lines carry no personal data, but no need for the noise either

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
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes | None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b'{"error":"body too large"}')
                    return None
                return self.rfile.read(length)

            def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
                self._reply(HTTPStatus.NO_CONTENT, b"")

            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?")[0] in ("/", "/login"):
                    page = _LOGIN_PAGE.format(message="Enter the operator token you were given.")
                    self._reply(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
                elif self.path == "/health":
                    self._reply(HTTPStatus.OK, b'{"ok":true}')
                else:
                    self._reply(HTTPStatus.NOT_FOUND, b'{"error":"not found"}')

            def do_POST(self) -> None:  # noqa: N802
                path = self.path.split("?")[0].rstrip("/")
                body = self._body()
                if body is None:
                    return
                if path == "/login":
                    token = (parse_qs(body.decode(errors="replace")).get("token") or [""])[0]
                    if not hmac.compare_digest(token.encode(), server.token.encode()):
                        page = _LOGIN_PAGE.format(message="That token is not right.")
                        self._reply(HTTPStatus.UNAUTHORIZED, page.encode(), "text/html; charset=utf-8")
                        return
                    cookie = f"{COOKIE}={server.token}; HttpOnly; SameSite=Lax; Path=/"
                    page = _LOGIN_PAGE.format(message="Signed in: the UI can now decrypt cases.")
                    self._reply(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8", {"Set-Cookie": cookie})
                    return
                action = path.rsplit("/", 1)[-1]
                if action not in ("decode", "encode"):
                    self._reply(HTTPStatus.NOT_FOUND, b'{"error":"not found"}')
                    return
                if not server.authorised(self.headers):
                    self._reply(HTTPStatus.UNAUTHORIZED, b'{"error":"a valid bearer token is required"}')
                    return
                try:
                    self._reply(HTTPStatus.OK, server.transform(action, body))
                except (json_format.ParseError, EncryptionConfigError, ValueError) as exc:
                    self._reply(HTTPStatus.BAD_REQUEST, f'{{"error": "{type(exc).__name__}"}}'.encode())
                except Exception:  # a tampered payload fails authentication (InvalidTag): say no more
                    self._reply(HTTPStatus.BAD_REQUEST, b'{"error":"payload could not be decrypted"}')

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        return self._httpd

    def start_in_background(self, host: str = "127.0.0.1", port: int = 0) -> int:
        httpd = self.serve(host, port)
        threading.Thread(target=httpd.serve_forever, daemon=True, name="codec-server").start()
        return httpd.server_address[1]

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        keyring = keyring_from_env()
        if keyring is None:
            raise EncryptionConfigError("no encryption keys: set COMPLAINTS_ENCRYPTION_KEYS_FILE or "
                                        "COMPLAINTS_ENCRYPTION_KEY")
        server = CodecServer(EncryptionCodec(keyring), read_token(args.token_file),
                             tuple(args.ui_origin or DEFAULT_ORIGINS))
        httpd = server.serve(args.host, args.port)
    except (EncryptionConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"codec server on http://{args.host}:{httpd.server_address[1]} (sign in at /login)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0
