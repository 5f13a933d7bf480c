"""Connections to the case record and its schema."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

SCHEMA = Path(__file__).with_name("schema.sql")
_SCHEMA_LOCK = 7_311_001  # advisory lock id: two workers starting at once apply the schema once


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection)
    assert pool is not None
    return pool


async def apply_schema(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _SCHEMA_LOCK)
        try:
            await conn.execute(SCHEMA.read_text(encoding="utf-8"))
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _SCHEMA_LOCK)
    finally:
        await conn.close()


DEMO_STAFF = [
    ("S-CH-01", "Priya Shah", "case_handler"),
    ("S-CH-02", "Tom Evans", "case_handler"),
    ("S-CH-03", "Grace Okafor", "case_handler"),
    ("S-CM-01", "Alan Reid", "complaints_manager"),
    ("S-CM-02", "Fatima Hussain", "complaints_manager"),
    ("S-S2-01", "Helen Clarke", "stage2_reviewer"),
    ("S-S2-02", "Daniel Moore", "stage2_reviewer"),
    ("S-OD-01", "Margaret Lewis", "operational_director"),
    ("S-OD-02", "Samuel Adeyemi", "operational_director"),
]
DEMO_INVOLVED_CUSTOMERS = [("IC-01", "Joan Baker"), ("IC-02", "Winston Campbell"), ("IC-03", "Aisha Noor")]


async def seed_reference_data(url: str) -> None:
    """Staff and involved customers for a demo or test system; idempotent."""
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO staff (id, name, role) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING", DEMO_STAFF
        )
        await conn.executemany(
            "INSERT INTO involved_customers (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            DEMO_INVOLVED_CUSTOMERS,
        )
    finally:
        await conn.close()
