"""Configuration from the environment, and the Temporal client every entry point uses."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel
from temporalio.client import Client, TLSConfig
from temporalio.converter import DataConverter

from domain.contract import TASK_QUEUE_DEFAULT
from domain.encryption import EncryptionConfigError, KeyRing, data_converter, keyring_from_env


class Settings(BaseModel):
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = TASK_QUEUE_DEFAULT
    database_url: str | None = None
    metrics_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    api_key: str | None = None
    # Residents' personal data goes to Temporal encrypted; plaintext only when asked for by name.
    keyring: KeyRing | None = None
    plaintext: bool = False
    # Cases the worker keeps in memory between their workflow tasks; None: worker.CACHED_CASES_DEFAULT.
    cached_cases: int | None = None

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        port = env.get("COMPLAINTS_METRICS_PORT")
        cached = env.get("COMPLAINTS_WORKER_CACHED_CASES")
        return cls(
            temporal_address=env.get("TEMPORAL_ADDRESS", cls.model_fields["temporal_address"].default),
            temporal_namespace=env.get("TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("COMPLAINTS_TASK_QUEUE", TASK_QUEUE_DEFAULT),
            database_url=env.get("COMPLAINTS_DATABASE_URL") or None,
            metrics_port=_whole(port, "COMPLAINTS_METRICS_PORT", 1, 65_534) if port else None,
            tls_cert=env.get("TEMPORAL_TLS_CERT") or None,
            tls_key=env.get("TEMPORAL_TLS_KEY") or None,
            api_key=env.get("TEMPORAL_API_KEY") or None,
            keyring=keyring_from_env(env),
            plaintext=env.get("COMPLAINTS_ENCRYPTION", "").lower() == "off",
            cached_cases=_whole(cached, "COMPLAINTS_WORKER_CACHED_CASES", 0, 1_000_000) if cached else None,
        )

    def converter(self) -> DataConverter:
        if self.keyring is None and not self.plaintext:
            raise EncryptionConfigError(
                "no encryption keys for residents' data: set COMPLAINTS_ENCRYPTION_KEYS_FILE or "
                "COMPLAINTS_ENCRYPTION_KEY (or COMPLAINTS_ENCRYPTION=off on a test system)")
        return data_converter(self.keyring)


class SettingsError(ValueError):
    """An environment variable the engine reads holds a value it cannot use."""


def _whole(value: str, name: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: not a whole number") from None
    if not low <= n <= high:
        raise SettingsError(f"{name}={n}: must be from {low} to {high}")
    return n


async def connect(settings: Settings, **kwargs) -> Client:
    tls: TLSConfig | bool = False
    if settings.tls_cert and settings.tls_key:
        tls = TLSConfig(client_cert=Path(settings.tls_cert).read_bytes(),
                        client_private_key=Path(settings.tls_key).read_bytes())
    elif settings.api_key:
        tls = True
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=settings.converter(),
        tls=tls,
        api_key=settings.api_key,
        **kwargs,
    )
