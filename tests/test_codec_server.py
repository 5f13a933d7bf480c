"""The codec server cannot be exhausted by someone without the token, and its sign-in is a session,
not the token (issue 15, point 8). The memory test runs `python -m starter codec-server` as its own
process and reads its resident set size from /proc."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import select
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from domain.encryption import EncryptionCodec, KeyRing
from starter.codec_server import COOKIE, CodecServer, Sessions
from tests.faults.stack import free_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "operator-token-for-tests-0123456789"
MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def raw_request(port: int, head: str, body_mb: int = 0, *, wait: float = 10.0) -> tuple[int | None, int]:
    """Send `head` then up to body_mb MB of body as fast as the server takes it; return the status the
    server answered (None if it answered nothing) and how many MB it took before closing."""
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(head.encode())
        chunk = b"x" * MB
        try:
            for _ in range(body_mb):
                if select.select([s], [], [], 0)[0]:  # answered early, as a client listening should see
                    break
                s.sendall(chunk)
                sent += 1
            else:
                s.shutdown(socket.SHUT_WR)  # the end of the body, for a server that reads to EOF
            answer = s.recv(200)
        except OSError:
            pass  # reset: the server closed without an answer
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/") else None
    return status, sent


def head(path: str, headers: dict[str, str]) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"


@contextmanager
def codec_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    keys = tmp_path / "keys.json"
    keys.write_text(KeyRing.generate().to_json())
    port = free_port()
    env = {**os.environ, "COMPLAINTS_ENCRYPTION_KEYS_FILE": str(keys), "COMPLAINTS_CODEC_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "starter", "codec-server", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < end, "the codec server did not start"
                time.sleep(0.1)
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(10)


def test_200_mb_without_a_token_is_refused_unread_and_memory_stays_flat(tmp_path: Path) -> None:
    with codec_process(tmp_path) as (proc, port):
        before = rss_mb(proc.pid)
        lengths = {"a negative length": "-1", "no length": None, "a huge length": str(200 * MB)}
        for what, length in lengths.items():
            headers = {"Content-Type": "application/json"}
            if length is None:
                headers["Transfer-Encoding"] = "chunked"
            else:
                headers["Content-Length"] = length
            status, sent = raw_request(port, head("/decode", headers), body_mb=200)
            grown = rss_mb(proc.pid) - before
            assert grown < 20, f"{what}: the codec server grew by {grown:.0f} MB on a request it refused"
            assert status == 401, f"{what}: answered {status}"
            assert sent < 200, f"{what}: the server took all 200 MB before answering"
        # Negative and absurd lengths are refused unread also with the token.
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert raw_request(port, head("/decode", {**auth, "Content-Length": "-1"}), 50)[0] == 400
        assert raw_request(port, head("/decode", {**auth, "Content-Length": str(200 * MB)}), 50)[0] == 413
        assert raw_request(port, head("/decode", {**auth, "Transfer-Encoding": "chunked"}), 50)[0] == 411
        assert rss_mb(proc.pid) - before < 20


@contextmanager
def server(**kwargs) -> Iterator[tuple[CodecServer, int]]:
    s = CodecServer(EncryptionCodec(KeyRing.generate()), TOKEN, **kwargs)
    port = s.start_in_background()
    try:
        yield s, port
    finally:
        s.stop()


def test_slow_clients_are_cut_off_and_connections_are_bounded() -> None:
    with server(request_deadline_s=1.0, max_connections=4) as (_, port):
        # Headers that never finish, even trickled a byte at a time, end at the deadline.
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /decode HTTP/1.1\r\n")
            closed = False
            for _ in range(40):
                try:
                    s.sendall(b"X")
                    s.settimeout(0.2)
                    closed = s.recv(100) == b""
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
                if closed:
                    break
        assert closed and time.monotonic() - started < 5, "a trickling client is cut off at the deadline"
        # A body that never arrives, from an operator with the token, too.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head("/decode", {"Authorization": f"Bearer {TOKEN}", "Content-Length": "1000"}).encode())
            started = time.monotonic()
            assert s.recv(100) == b"" and time.monotonic() - started < 5
        # Four idle connections hold every slot: a fifth is told 503 at once, and the slots come back.
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
        time.sleep(0.2)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                assert s.recv(100).startswith(b"HTTP/1.0 503")
        finally:
            for s in idle:
                s.close()
        time.sleep(1.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            assert resp.status == 200


def sign_in(base: str, context: ssl.SSLContext | None = None) -> tuple[str, str]:
    req = urllib.request.Request(f"{base}/login", data=f"token={TOKEN}".encode())
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        header = resp.headers["Set-Cookie"]
    return header, header.split(";")[0]


def decode_status(base: str, cookie: str, context: ssl.SSLContext | None = None) -> int:
    req = urllib.request.Request(f"{base}/decode", data=b'{"payloads": []}', headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_sign_in_cookie_is_a_session_that_expires_and_signs_out() -> None:
    with server(sessions=Sessions(ttl_s=1.0)) as (_, port):
        base = f"http://127.0.0.1:{port}"
        header, cookie = sign_in(base)
        attrs = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
        assert cookie.startswith(f"{COOKIE}=") and TOKEN not in header, "the cookie is not the token"
        assert {"httponly", "samesite", "max-age", "path"} <= attrs and "secure" not in attrs
        assert decode_status(base, cookie) == 200
        time.sleep(1.2)
        assert decode_status(base, cookie) == 401, "an expired session no longer decrypts"

    with server() as (_, port):
        base = f"http://127.0.0.1:{port}"
        _, cookie = sign_in(base)
        req = urllib.request.Request(f"{base}/logout", data=b"", headers={"Cookie": cookie})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert "Max-Age=0" in resp.headers["Set-Cookie"]
        assert decode_status(base, cookie) == 401, "signed out: the session is gone"
        # Behind a TLS-terminating proxy the cookie is Secure.
        req = urllib.request.Request(f"{base}/login", data=f"token={TOKEN}".encode(),
                                     headers={"X-Forwarded-Proto": "https"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert "; Secure" in resp.headers["Set-Cookie"]


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_over_tls_the_cookie_is_secure_and_a_stalled_handshake_is_cut(tmp_path: Path) -> None:
    from starter.codec_server import tls_context

    cert, key = self_signed(tmp_path)
    client = ssl.create_default_context(cafile=str(cert))
    with server(tls=tls_context(str(cert), str(key)), request_deadline_s=1.0) as (_, port):
        base = f"https://127.0.0.1:{port}"
        header, cookie = sign_in(base, client)
        assert "; Secure" in header
        assert decode_status(base, cookie, client) == 200
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            started = time.monotonic()
            assert s.recv(100) == b"" and time.monotonic() - started < 5, "no handshake, cut at the deadline"
        assert decode_status(base, cookie, client) == 200, "the server still serves"


@pytest.mark.parametrize("path", ["/decode", "/encode", "/default/decode"])
def test_unknown_senders_never_reach_the_codec(path: str) -> None:
    with server() as (_, port):
        status, _ = raw_request(port, head(path, {"Content-Length": "2"}) + "{}")
        assert status == 401
