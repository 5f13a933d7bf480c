"""Residents' personal data is encrypted before it reaches Temporal; the codec server decrypts it for
operators with the token, and for nobody else."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime

import asyncpg
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.case_record import CaseRecordActivities
from domain import unreadable
from domain.contract import workflow_id
from domain.encryption import (
    ENCODING,
    EncryptionCodec,
    EncryptionConfigError,
    KeyRing,
    UnreadablePayload,
    WorkerCodec,
    data_converter,
    keyring_from_env,
)
from starter.codec_server import COOKIE, CodecServer
from tests.conftest import binary
from tests.support import complaint, new_reference, wait_for
from workflows.complaint import ComplaintWorkflow

TOKEN = "operator-token-for-tests-0123456789"
NAME = "Maria Jones"
ADDRESS = "Flat 4, 12 Harbour Road"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_round_trip_and_rotation() -> None:
    old = KeyRing.generate("k1")
    sealed = await EncryptionCodec(old).encode([plain(NAME)])
    assert sealed[0].metadata["encoding"] == ENCODING and sealed[0].metadata["encryption-key-id"] == b"k1"
    assert NAME.encode() not in sealed[0].SerializeToString()

    # Rotation: k2 becomes active; payloads written under k1 still open, new ones use k2.
    rotated = KeyRing(active="k2", keys={**old.keys, "k2": KeyRing.generate("k2").keys["k2"]})
    codec = EncryptionCodec(rotated)
    assert (await codec.decode(sealed))[0].data == json.dumps(NAME).encode()
    assert (await codec.encode([plain(NAME)]))[0].metadata["encryption-key-id"] == b"k2"
    # A process that lost the old key says which key it lacks instead of showing garbage.
    with pytest.raises(UnreadablePayload, match="'k1'"):
        await EncryptionCodec(KeyRing.generate("k3")).decode(sealed)
    # Tampering is detected (GCM's tag), not decoded into something else; the CLI prints the one line.
    bad = Payload(metadata=sealed[0].metadata, data=sealed[0].data[:-1] + bytes([sealed[0].data[-1] ^ 1]))
    with pytest.raises(UnreadablePayload, match="cannot be opened"):
        await codec.decode([bad])


async def test_the_workers_codec_never_fails_and_lets_nothing_in_clear() -> None:
    """The worker's codec turns what it cannot open, and what came in clear, into a stand-in that only
    says why (no content); it tells the operator once which key it lacks."""
    ring = KeyRing.generate("k1")
    codec = WorkerCodec(ring)
    sealed = (await EncryptionCodec(ring).encode([plain(NAME)]))[0]
    other = (await EncryptionCodec(KeyRing.generate("k9")).encode([plain(NAME)]))[0]
    junk = Payload(metadata={"encoding": ENCODING, "encryption-key-id": b"k1"}, data=b"\x00" * 40)
    nameless = Payload(metadata={"encoding": ENCODING}, data=b"junk")
    out = await codec.decode([sealed, other, junk, nameless, plain(NAME), Payload(), other])
    assert out[0].data == json.dumps(NAME).encode()
    reasons = [unreadable.reason(p) for p in out[1:]]
    assert "'k9'" in reasons[0] and "does not have" in reasons[0]
    assert "cannot be opened" in reasons[1] and "names no key" in reasons[2]
    assert "unencrypted" in reasons[3] and reasons[4] is None and "'k9'" in reasons[5]
    assert all(NAME.encode() not in p.SerializeToString() for p in out[1:])


def test_keys_come_from_the_environment_or_a_file(tmp_path) -> None:
    assert keyring_from_env({}) is None
    ring = KeyRing.generate("k7")
    path = tmp_path / "keys.json"
    path.write_text(ring.to_json())
    assert keyring_from_env({"COMPLAINTS_ENCRYPTION_KEYS_FILE": str(path)}) == ring
    one = base64.b64encode(ring.keys["k7"]).decode()
    assert keyring_from_env({"COMPLAINTS_ENCRYPTION_KEY": one}).active == "k1"
    with pytest.raises(EncryptionConfigError, match="COMPLAINTS_ENCRYPTION_KEY"):
        keyring_from_env({"COMPLAINTS_ENCRYPTION_KEY": base64.b64encode(b"short").decode()})
    path.write_text('{"active": "k9", "keys": {}}')
    with pytest.raises(EncryptionConfigError, match="keys.json"):
        keyring_from_env({"COMPLAINTS_ENCRYPTION_KEYS_FILE": str(path)})


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def test_codec_server_needs_the_token() -> None:
    ring = KeyRing.generate()
    sealed = await EncryptionCodec(ring).encode([plain(NAME)])
    body = json.dumps({"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                                      "data": base64.b64encode(p.data).decode()} for p in sealed]}).encode()
    server = CodecServer(EncryptionCodec(ring), TOKEN)
    port = server.start_in_background()
    base = f"http://127.0.0.1:{port}"
    try:
        assert post(f"{base}/decode", body, {})[0] == 401
        assert post(f"{base}/decode", body, {"Authorization": "Bearer wrong-token-xxxxxxxxxxxxx"})[0] == 401
        status, out = post(f"{base}/decode", body, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        decoded = json.loads(out)["payloads"][0]
        assert base64.b64decode(decoded["data"]) == json.dumps(NAME).encode()
        # The dev UI has no sign-on: the operator signs in once and the cookie does the rest.
        req = urllib.request.Request(f"{base}/login", data=f"token={TOKEN}".encode())
        with urllib.request.urlopen(req, timeout=10) as resp:
            cookie = resp.headers["Set-Cookie"].split(";")[0]
        assert cookie.startswith(f"{COOKIE}=")
        assert post(f"{base}/decode", body, {"Cookie": cookie})[0] == 200
        assert post(f"{base}/login", b"token=nope", {})[0] == 401
        assert post(f"{base}/decode", b"not json", {"Authorization": f"Bearer {TOKEN}"})[0] == 400
    finally:
        server.stop()


async def test_temporal_holds_no_personal_data_in_clear(dev_env: WorkflowEnvironment, pool: asyncpg.Pool,
                                                         dev_now: Callable[[], datetime]) -> None:
    ring = KeyRing.generate()
    client = Client(dev_env.client.service_client, namespace=dev_env.client.namespace,
                    data_converter=data_converter(ring))
    ref = new_reference("ENC")
    queue = f"q-{ref}"
    async with Worker(client, task_queue=queue, workflows=[ComplaintWorkflow],
                      activities=CaseRecordActivities(pool).all()):
        handle = await client.start_workflow(ComplaintWorkflow.run, complaint(ref, dev_now()), id=workflow_id(ref),
                                             task_queue=queue)
        s = await wait_for(handle, lambda s: s.handler is not None and s.status.value == "investigating",
                           "acknowledgement")
        assert s.reference == ref  # the worker and this client decrypt fine

    server = CodecServer(EncryptionCodec(ring), TOKEN)
    port = server.start_in_background()
    target = dev_env.client.service_client.config.target_host
    show = [binary("temporal"), "workflow", "show", "--address", target, "--workflow-id", workflow_id(ref),
            "--output", "json"]
    try:
        raw = subprocess.run(show, capture_output=True, text=True, timeout=60, check=True).stdout
        opened = raw + _decoded_text(raw)  # payload data is base64 in the JSON: look inside it too
        for secret in (NAME, ADDRESS, "Damp and mould"):
            assert secret not in opened, f"{secret!r} is in the Temporal history in clear"
        assert base64.b64encode(ENCODING).decode() in raw, "the payloads are there, encrypted"

        decoded = subprocess.run([*show, "--codec-endpoint", f"http://127.0.0.1:{port}",
                                  "--codec-auth", f"Bearer {TOKEN}"],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
        assert NAME in decoded + _decoded_text(decoded), "an operator with the token reads the case"

        refused = subprocess.run([*show, "--codec-endpoint", f"http://127.0.0.1:{port}"],
                                 capture_output=True, text=True, timeout=60)
        assert NAME not in refused.stdout + refused.stderr, "without the token the codec server refuses"
    finally:
        server.stop()


def _decoded_text(shown: str) -> str:
    """Payload data in `temporal workflow show --output json` is base64; open it up to search it."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "data" in node and isinstance(node["data"], str):
                try:
                    found.append(base64.b64decode(node["data"]).decode(errors="replace"))
                except ValueError:
                    pass
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(shown))
    return "\n".join(found)
