"""Hostile input against the real functions: oversized bodies, SQL injection, JSON bombs, path
traversal, malicious MOJO zips and forged admin credentials.

Why: every one of these must end as a 4xx (or a typed error) with nothing written where it
should not be, and never as a 500, a crash or a changed registry. Each test checks the effect on
the real store (Postgres rows, S3 keys, the registry), not only the status code.
"""

from __future__ import annotations

import asyncio
import io
import socket
import struct
import uuid
import zipfile
from pathlib import Path

import asyncpg
import orjson
import pytest
from reliability_support import INGEST_AUTH, PUBLISH_KEY, TOKEN

from converge.artifacts import ArtifactStore, InvalidKey, model_key, sha256_hex
from converge.event_signing import signed_headers
from converge.mojo import CorruptMojoError, load_mojo
from converge.registry import Registry
from converge.serving.testing import register_model

pytestmark = pytest.mark.integration

AUTH = {"authorization": f"Bearer {TOKEN}"}
CE = {"ce-specversion": "1.0", "ce-source": "tests/hostile", "ce-id": "h-1"}


@pytest.fixture(scope="module")
async def functions(functions, settings, pool, corpus):
    """The package's functions; the model also has a staged v2."""
    mojo, rows = corpus["binomial"]
    await register_model(settings, pool, settings.default_model, mojo, rows)
    return functions


async def registry_state(pool, name: str) -> tuple:
    registry = Registry(pool)
    versions = await registry.list_versions(name)
    production = await registry.production(name)
    return (
        [(v.version, v.stage, v.sha256) for v in versions],
        production.version if production else None,
    )


# -- size limits ----------------------------------------------------------------------------------
def _declared_oversize(port: int, path: str, extra: dict[str, str], declared: int) -> bytes:
    """Declare a huge body, send only 1 KiB, and read the answer: it must come without the rest."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
    head += f"Content-Length: {declared}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"{" + b" " * 1023)
        return sock.recv(4096)


ENDPOINTS = [
    ("predict", "/predict", {}),
    ("predict", "/events", {**CE, "ce-type": "anything"}),
    ("ingest", "/ingest", INGEST_AUTH),
    ("ingest", "/events", {**CE, "ce-type": "features.ingest"}),
    ("reload", "/events", {**CE, "ce-type": "model.published"}),
    ("reload", "/admin/reload-model", AUTH),
]


@pytest.mark.parametrize(("role", "path", "headers"), ENDPOINTS)
async def test_oversized_bodies_are_refused_before_they_are_read(
    functions, http, settings, role, path, headers
):
    port = functions[role].port
    answer = await asyncio.to_thread(_declared_oversize, port, path, headers, 50 * 2**20)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    async def chunks():  # no Content-Length: the limit must hold while streaming too
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    r = await http[role].post(
        path, content=chunks(), headers={"content-type": "application/json", **headers}
    )
    assert r.status_code == 413, r.text
    assert (await http[role].get("/healthz")).status_code == 200


# -- SQL injection ----------------------------------------------------------------------------------
INJECTIONS = [
    "'; DROP TABLE features; --",
    "x') ON CONFLICT DO NOTHING; DELETE FROM model_versions; --",
    "$$; TRUNCATE models CASCADE; $$",
    "\\'; SELECT pg_sleep(10); --",
    "1 OR 1=1",
    '"key": null}',
    "ünïcødé ☃ 𝄞",
]


async def test_sql_injection_in_features_is_stored_verbatim_and_tables_survive(
    http, settings, postgres, pool
):
    tag = uuid.uuid4().hex[:8]
    vectors = [
        {
            "entity_id": f"{tag}-{i}-{text}"[:256],
            "event_time": "2025-02-01T00:00:00Z",
            "features": {text[:128]: text, f"k{i}": f"{text} {i}", "n": i},
        }
        for i, text in enumerate(INJECTIONS)
    ]
    before = await registry_state(pool, settings.default_model)
    r = await http["ingest"].post("/ingest", json={"vectors": vectors}, headers=INGEST_AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": len(vectors), "written": len(vectors), "duplicate": False}

    conn = await asyncpg.connect(postgres.dsn)
    try:
        rows = await conn.fetch(
            "SELECT entity_id, feature_vector::text AS fv FROM features WHERE entity_id LIKE $1",
            f"{tag}-%",
        )
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
    finally:
        await conn.close()
    stored = {r["entity_id"]: orjson.loads(r["fv"]) for r in rows}
    assert stored == {v["entity_id"]: v["features"] for v in vectors}
    assert {"features", "models", "model_versions"} <= tables
    assert await registry_state(pool, settings.default_model) == before

    # Reading them back through predict's entity lookup is just as literal.
    r = await http["predict"].post("/predict", json={"entity_id": vectors[0]["entity_id"]})
    assert r.status_code in (200, 422), r.text
    r = await http["predict"].post("/predict", json={"entity_id": "nobody' OR '1'='1"})
    assert r.status_code == 404, r.text


# -- JSON bombs -------------------------------------------------------------------------------------
def _bombs() -> dict[str, bytes]:
    deep = b'{"features": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    shallow_deep = b'{"features": {"a": ' + b"[" * 500 + b"]" * 500 + b"}}"
    return {
        "deep nesting": deep[:1_000_000],
        "nesting within the parser's limit": shallow_deep,
        "huge float": b'{"features": {"AGE": 1e999999}}',
        "huge integer": b'{"features": {"AGE": ' + b"9" * 5000 + b"}}",
        "huge string": orjson.dumps({"features": {"AGE": "x" * 900_000}}),
        "huge key": orjson.dumps({"features": {"k" * 200_000: 1}}),
        "many keys": orjson.dumps({"features": {f"k{i}": i for i in range(50_000)}}),
        "many instances": orjson.dumps({"instances": [{"features": {}}] * 20_000}),
        "NaN": b'{"features": {"AGE": NaN}}',
        "duplicate keys": b'{"features": {"AGE": 1, "AGE": 2}, "features": 3}',
        "not an object": b'"just a string"',
        "invalid utf-8": b'{"features": {"AGE": "\xff\xfe"}}',
        "nul in key": b'{"features": {"A\\u0000GE": 1}}',
    }


@pytest.mark.parametrize("bomb", list(_bombs()))
@pytest.mark.parametrize("target", ["predict", "ingest", "reload-event"])
async def test_json_bombs_are_a_4xx(http, bomb, target):
    body = _bombs()[bomb]
    if target == "ingest":
        body = body.replace(
            b'"features"', b'"entity_id": "b", "event_time": "2025-01-01T00:00:00Z", "features"', 1
        )
        r = await http["ingest"].post(
            "/ingest", content=body, headers={"content-type": "application/json", **INGEST_AUTH}
        )
    elif target == "reload-event":
        r = await http["reload"].post(
            "/events", content=body,
            headers={**CE, "ce-type": "model.published", "content-type": "application/json"},
        )  # fmt: skip
    else:
        r = await http["predict"].post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert "error" in r.json()


# -- path traversal ---------------------------------------------------------------------------------
TRAVERSALS = [
    "../../etc/passwd",
    "..",
    "a/../b",
    "models/../../x",
    "%2e%2e",
    "x\\..\\y",
    "/abs",
    "a..b",
]


def _bucket_keys(settings) -> set[str]:
    client = ArtifactStore(settings).client
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


@pytest.mark.parametrize("name", TRAVERSALS)
async def test_traversal_in_model_names_is_a_4xx(http, name):
    r = await http["predict"].post("/predict", json={"model": name, "features": {"AGE": 1}})
    assert r.status_code == 422, r.text
    r = await http["reload"].post(
        "/admin/reload-model", json={"name": name, "version": 1}, headers=AUTH
    )
    assert r.status_code == 422, r.text
    data = {"name": name, "version": 1}
    signed = signed_headers(PUBLISH_KEY, "model.published", "tests/hostile", data, "h-2")
    r = await http["reload"].post("/events", json=data, headers=signed)
    assert r.status_code == 422, r.text
    quoted = name.replace("/", "%2F").replace("\\", "%5C")
    r = await http["reload"].get(f"/admin/models/{quoted}/versions", headers=AUTH)
    assert 400 <= r.status_code < 500, r.text


async def test_traversal_in_artifact_keys_writes_nothing_outside_the_prefix(http, settings, pool):
    before = _bucket_keys(settings)
    store = ArtifactStore(settings)
    for key in ["../escape.zip", "models/../../escape.zip", "/escape.zip", "models\\..\\x", "a/./b",
                "models//x", "m/\x00/x", "models/..", "x" * 2000]:  # fmt: skip
        with pytest.raises(InvalidKey):
            await asyncio.to_thread(store.put, key, b"data")
    for name in TRAVERSALS:
        with pytest.raises(InvalidKey):
            model_key(name, 1)
    with pytest.raises(InvalidKey):
        model_key("ok", 1, "../x.zip")

    # A registry entry whose URI climbs out of the bucket is refused at reload, not fetched.
    name = f"trav-{uuid.uuid4().hex[:6]}"
    mv = await Registry(pool).register(
        name,
        artifact_uri=f"s3://{settings.s3_bucket}/models/{name}/1/../../../secret.zip",
        sha256="0" * 64,
        metrics={},
        lineage={},
        validation_sample={"rows": [{"AGE": 1}], "predictions": [{"predict": "0"}]},
    )
    r = await http["reload"].post(
        "/admin/reload-model", json={"name": name, "version": mv.version}, headers=AUTH
    )
    assert r.status_code == 422, r.text
    assert (await Registry(pool).production(name)) is None
    after = _bucket_keys(settings)
    assert all(k.startswith("models/") and ".." not in k for k in after - before), after - before


# -- malicious MOJO zips ----------------------------------------------------------------------------
def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


def _lying_sizes(data: bytes, declared: int) -> bytes:
    """Patch every local and central header to claim ``declared`` uncompressed bytes."""
    out = bytearray(data)
    i = 0
    while (i := out.find(b"PK\x03\x04", i)) >= 0:
        out[i + 22 : i + 26] = struct.pack("<I", declared)
        i += 4
    i = 0
    while (i := out.find(b"PK\x01\x02", i)) >= 0:
        out[i + 24 : i + 28] = struct.pack("<I", declared)
        i += 4
    return bytes(out)


def _malicious(corpus_mojo: bytes) -> dict[str, tuple[bytes, str | tuple[str, ...]]]:
    good = zipfile.ZipFile(io.BytesIO(corpus_mojo))
    entries = {n: good.read(n) for n in good.namelist()}
    bomb = _zip({**entries, "domains/d000.txt": bytes(64 * 2**20)})
    inflating = _zip({"model.ini": bytes(4 * 2**20)})
    inflating = _lying_sizes(inflating, 4096)
    return {
        "dot-dot entry": (_zip({**entries, "../evil.txt": b"pwned"}), "unsafe entry name"),
        "absolute entry": (_zip({**entries, "/tmp/evil.txt": b"pwned"}), "unsafe entry name"),
        "nested dot-dot": (
            _zip({**entries, "experimental/../../evil.txt": b"x"}),
            "unsafe entry name",
        ),
        "zip bomb": (bomb, "zip bomb"),
        # zipfile stops at the declared size and then fails the CRC; our own cap is the backstop.
        "lying sizes": (inflating, ("inflates beyond", "Bad CRC")),
        "truncated": (corpus_mojo[: len(corpus_mojo) // 2], "not a zip"),
        "empty zip": (_zip({}), "no model.ini"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "dot-dot entry",
        "absolute entry",
        "nested dot-dot",
        "zip bomb",
        "lying sizes",
        "truncated",
        "empty zip",
    ],
)
def test_malicious_mojo_is_rejected_and_nothing_is_extracted(corpus, tmp_path, case, monkeypatch):
    data, expected = _malicious(corpus["binomial"][0])[case]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    path = tmp_path / "model.zip"
    path.write_bytes(data)
    for source in (data, path):
        with pytest.raises(CorruptMojoError) as info:
            load_mojo(source, backend="native")
        accepted = (expected,) if isinstance(expected, str) else expected
        assert any(text in str(info.value) for text in accepted), str(info.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["model.zip", "work"]
    assert not Path("/tmp/evil.txt").exists()


async def test_malicious_mojo_through_reload_is_a_422_and_production_stays(
    http, settings, pool, corpus
):
    name = settings.default_model
    rows = corpus["binomial"][1]
    for case, (data, _) in _malicious(corpus["binomial"][0]).items():
        before = await registry_state(pool, name)
        mv = await register_model(
            settings, pool, name, data, rows, predictions=[{"predict": "0"}] * len(rows)
        )
        r = await http["reload"].post(
            "/admin/reload-model", json={"name": name, "version": mv.version}, headers=AUTH
        )
        assert r.status_code == 422, (case, r.text)
        assert "artifact rejected" in r.json()["error"], (case, r.text)
        after = await registry_state(pool, name)
        assert after[1] == before[1], case
        assert sha256_hex(data) == mv.sha256
    r = await http["predict"].post("/predict", json={"features": rows[0]})
    assert r.status_code == 200 and r.json()["version"] == before[1]


# -- admin credentials ------------------------------------------------------------------------------
def _admin_calls(name: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", "/admin/models", None),
        ("GET", f"/admin/models/{name}/versions", None),
        ("GET", f"/admin/models/{name}/production", None),
        ("POST", f"/admin/models/{name}/promote", {"version": 2}),
        ("POST", f"/admin/models/{name}/rollback", None),
        ("POST", "/admin/reload-model", {"name": name, "version": 2}),
    ]


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("", 401),
        ("Bearer", 401),
        (f"Basic {TOKEN}", 401),
        ("Bearer wrong-token", 403),
        (f"Bearer {TOKEN}x", 403),
        (f"Bearer {TOKEN[:-1]}", 403),
        (f"Bearer {TOKEN.upper()}", 403),
        (f"Bearer {TOKEN} extra", 401),
    ],
)
async def test_admin_without_the_right_token_changes_nothing(
    http, settings, pool, authorization, status
):
    name = settings.default_model
    before = await registry_state(pool, name)
    headers = {} if authorization is None else {"authorization": authorization}
    for method, path, body in _admin_calls(name):
        r = await http["reload"].request(method, path, json=body, headers=headers)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        if status == 401:
            assert r.headers.get("www-authenticate") == "Bearer"
        assert TOKEN not in r.text
    assert await registry_state(pool, name) == before


def test_the_admin_token_never_reaches_the_logs(functions):
    """Forged and real credentials were sent above; neither may be logged."""
    for fn in functions.values():
        assert TOKEN not in fn.log_path.read_text(errors="replace")
