"""Encryption of everything the engine sends to Temporal: residents' personal data never reaches the
Temporal database or UI in clear.

AES-256-GCM per payload, with the key's id in the payload's metadata so keys can be rotated: new
payloads use the active key, old ones still decrypt with the key they name. Keys come from the
environment or a file, never from the repository:

    COMPLAINTS_ENCRYPTION_KEYS_FILE  JSON {"active": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}
    COMPLAINTS_ENCRYPTION_KEY        one base64 key (32 bytes), with COMPLAINTS_ENCRYPTION_KEY_ID (default k1)

The codec runs in the client and the worker, outside the workflow sandbox, so os.urandom is fine.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# Binds ciphertext to this use: a payload encrypted for another system with the same key won't open.
_AAD = b"complaints-engine/v1"
_NONCE = 12


class EncryptionConfigError(ValueError):
    """Keys missing or malformed; the message says which setting."""


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
        self._ring = keyring
        self._ciphers = {kid: AESGCM(key) for kid, key in keyring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        kid = self._ring.active
        cipher = self._ciphers[kid]
        out = []
        for p in payloads:
            nonce = os.urandom(_NONCE)
            sealed = cipher.encrypt(nonce, p.SerializeToString(), _AAD)
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)  # never encrypted (e.g. written before encryption was turned on)
                continue
            kid = p.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(kid)
            if cipher is None:
                raise EncryptionConfigError(f"payload encrypted with key {kid!r}, which this process does not have")
            inner = Payload()
            inner.ParseFromString(cipher.decrypt(p.data[:_NONCE], p.data[_NONCE:], _AAD))
            out.append(inner)
        return out


def data_converter(keyring: KeyRing | None) -> DataConverter:
    """The engine's converter: pydantic JSON, encrypted when keys are given."""
    if keyring is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keyring))
