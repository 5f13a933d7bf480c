"""Encryption of everything the engine sends to Temporal: residents' personal data never reaches the
Temporal database or UI in clear.

AES-256-GCM per payload, with the key's id in the payload's metadata so keys can be rotated: new
payloads use the active key, old ones still decrypt with the key they name. Keys come from the
environment or a file, never from the repository:

    COMPLAINTS_ENCRYPTION_KEYS_FILE  JSON {"active": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}
    COMPLAINTS_ENCRYPTION_KEY        one base64 key (32 bytes), with COMPLAINTS_ENCRYPTION_KEY_ID (default k1)

The codec runs in the client and the worker, outside the workflow sandbox, so os.urandom is fine.
Clients (the CLI, the codec server) raise UnreadablePayload, one line, on a payload they cannot open.
The worker's codec (WorkerCodec) never raises: a payload it cannot open, or one sent in clear, reaches
the case as a stand-in the handler refuses (domain/unreadable.py), so one bad message cannot wedge a case.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from domain import unreadable

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# Binds ciphertext to this use: a payload encrypted for another system with the same key won't open.
_AAD = b"complaints-engine/v1"
_NONCE = 12


log = structlog.get_logger("complaints.encryption")


class EncryptionConfigError(ValueError):
    """Keys missing or malformed; the message says which setting."""


class UnreadablePayload(EncryptionConfigError):
    """A payload this process cannot open: sealed with a key it lacks, or not a sealed payload at all."""

    def __init__(self, reason: str, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.key_id = key_id


# Said to whoever sent a plain payload to an encrypted engine; the content itself is never read.
PLAIN_REFUSED = ("sent unencrypted; this engine takes only payloads sealed with its codec "
                 "(docs/contracts/README.md, Encryption), so its content was not read")


class KeyRing(BaseModel):
    model_config = ConfigDict(frozen=True)

    active: str
    keys: dict[str, bytes]

    @field_validator("keys")
    @classmethod
    def _aes256(cls, keys: dict[str, bytes]) -> dict[str, bytes]:
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {kid!r} is {len(key)} bytes; AES-256 needs 32")
        return keys

    @model_validator(mode="after")
    def _active_known(self) -> KeyRing:
        if self.active not in self.keys:
            raise ValueError(f"active key {self.active!r} is not among the keys ({', '.join(self.keys)})")
        return self

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls(active=key_id, keys={key_id: AESGCM.generate_key(bit_length=256)})

    def to_json(self) -> str:
        return json.dumps({"active": self.active,
                           "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()}})

    @classmethod
    def from_json(cls, text: str, where: str) -> KeyRing:
        try:
            raw = json.loads(text)
            keys = {k: base64.b64decode(v, validate=True) for k, v in raw["keys"].items()}
            return cls(active=raw["active"], keys=keys)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, binascii.Error, ValueError) as exc:
            raise EncryptionConfigError(f"{where}: not a valid key file ({exc})") from None


def keyring_from_env(env: Mapping[str, str] | None = None) -> KeyRing | None:
    """The configured keys, or None when none are configured (the caller decides if that is allowed)."""
    env = os.environ if env is None else env
    path = env.get("COMPLAINTS_ENCRYPTION_KEYS_FILE")
    if path:
        try:
            return KeyRing.from_json(Path(path).read_text(encoding="utf-8"), path)
        except OSError as exc:
            raise EncryptionConfigError(f"COMPLAINTS_ENCRYPTION_KEYS_FILE: cannot read {path}: {exc}") from None
    single = env.get("COMPLAINTS_ENCRYPTION_KEY")
    if single:
        kid = env.get("COMPLAINTS_ENCRYPTION_KEY_ID", "k1")
        try:
            return KeyRing(active=kid, keys={kid: base64.b64decode(single, validate=True)})
        except (binascii.Error, ValueError) as exc:
            raise EncryptionConfigError(f"COMPLAINTS_ENCRYPTION_KEY: {exc}") from None
    return None


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring
        self._ciphers = {kid: AESGCM(key) for kid, key in keyring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        kid = self.keyring.active
        cipher = self._ciphers[kid]
        out = []
        for p in payloads:
            nonce = os.urandom(_NONCE)
            sealed = cipher.encrypt(nonce, p.SerializeToString(), _AAD)
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        # Plain payloads pass: written before encryption was turned on, or the SDK's own.
        return [self.open(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]

    def open(self, p: Payload) -> Payload:
        """The payload inside a sealed one; UnreadablePayload, one line, if it cannot be opened."""
        kid = p.metadata.get(KEY_ID, b"").decode(errors="replace")[:64]  # a sender's junk stays short
        if not kid:
            raise UnreadablePayload("payload marked as sealed names no key: it was not sealed by this engine's codec")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnreadablePayload(f"payload sealed with key {kid!r}, which this process does not have", kid)
        try:
            inner = Payload()
            inner.ParseFromString(cipher.decrypt(p.data[:_NONCE], p.data[_NONCE:], _AAD))
        except (InvalidTag, ValueError, DecodeError):
            raise UnreadablePayload(f"payload marked as sealed with key {kid!r} cannot be opened: it is corrupt, "
                                    "or was sealed for another system") from None
        return inner


class WorkerCodec(EncryptionCodec):
    """The worker's codec: decoding never raises, and plain payloads are not let in.

    A payload it cannot open, or one sent in clear, becomes a stand-in holding only the reason; the
    case's handler refuses it (a signal is recorded as refused, an update's validator refuses it, a
    start fails once saying why). Each key id it lacks is logged once, by id, for the operator."""

    def __init__(self, keyring: KeyRing) -> None:
        super().__init__(keyring)
        self._told: set[str] = set()

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._read(p) for p in payloads]

    def _read(self, p: Payload) -> Payload:
        encoding = p.metadata.get("encoding")
        if encoding == ENCODING:
            try:
                return self.open(p)
            except UnreadablePayload as exc:
                self._tell(exc)
                return unreadable.stand_in(str(exc))
        if encoding == unreadable.ENCODING or p.ByteSize() == 0:
            return p  # already a stand-in, or nothing at all: no personal data either way
        return unreadable.stand_in(PLAIN_REFUSED)

    def _tell(self, exc: UnreadablePayload) -> None:
        lacking = exc.key_id is not None and exc.key_id not in self._ciphers
        what = f"lacks:{exc.key_id}" if lacking else "corrupt"
        if what in self._told:
            return
        self._told.add(what)
        if lacking:
            log.error("a payload is sealed with an encryption key this worker does not have; the message is "
                      "refused. Add the key to COMPLAINTS_ENCRYPTION_KEYS_FILE", key_id=exc.key_id)
        else:
            log.warning("a payload marked as encrypted cannot be opened; the message is refused (told once)",
                        reason=str(exc))


def data_converter(keyring: KeyRing | None, *, worker: bool = False) -> DataConverter:
    """The engine's converter: pydantic JSON, encrypted when keys are given; the worker's never fails
    to decode (WorkerCodec)."""
    if keyring is None:
        return pydantic_data_converter
    codec = WorkerCodec(keyring) if worker else EncryptionCodec(keyring)
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def worker_converter(converter: DataConverter) -> DataConverter:
    """The same converter with the worker's codec in place of a client's EncryptionCodec."""
    codec = converter.payload_codec
    if isinstance(codec, EncryptionCodec) and not isinstance(codec, WorkerCodec):
        return dataclasses.replace(converter, payload_codec=WorkerCodec(codec.keyring))
    return converter
