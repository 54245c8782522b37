"""Attacks on the control plane against the real function processes: forged and unsigned events on
every route, replayed and reordered ``model.published`` and ``features.ingest`` events, and one
role's credential used for another role's write.

Why: any pod that reaches a Knative Broker can post any event, and Knative redelivers with backoff,
so late and repeated events are normal. Each test checks the effect on the real registry and
feature store, not only the status code: every attempt is refused or harmless.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr
from reliability_support import (
    INGEST_AUTH,
    INGEST_TOKEN,
    PUBLISH_KEY,
    TOKEN,
    wait_ready,
)

from converge.event_signing import SIGNATURE_ATTRIBUTE, signed_headers
from converge.registry import Registry
from converge.serving.testing import register_model

pytestmark = pytest.mark.integration

ADMIN = {"authorization": f"Bearer {TOKEN}"}


async def production(pool, name: str) -> int | None:
    mv = await Registry(pool).production(name)
    return None if mv is None else mv.version


def published(name: str, version: int, *, key: str = PUBLISH_KEY, **kw) -> tuple[dict, bytes]:
    data = {"name": name, "version": version}
    headers = signed_headers(key, "model.published", "tests/security", data, uuid.uuid4().hex, **kw)
    return headers, orjson.dumps(data)


def ingest_event(vectors: list[dict], event_id: str, time: str, key: str = INGEST_TOKEN):
    data = {"vectors": vectors}
    return signed_headers(key, "features.ingest", "tests/security", data, event_id, time), orjson.dumps(data)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- unauthenticated and forged events ----------------------------------------------------------
ROUTES = {
    "reload": ["/", "/events", "/admin/reload-model", "/admin/models/{name}/promote", "/healthz", "/x"],
    "ingest": ["/", "/events", "/ingest", "/healthz", "/x"],
    "predict": ["/", "/events", "/predict", "/v2/models/{name}/infer"],
}


@pytest.mark.parametrize("role", sorted(ROUTES))
async def test_an_unsigned_model_published_changes_nothing_on_any_route(http, settings, pool, corpus, role):
    """The original hole: CloudEvent headers on /admin/... promoted without a token."""
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    target = await register_model(settings, pool, name, mojo, rows)  # a staged version to push
    before = await production(pool, name)
    data = orjson.dumps({"name": name, "version": target.version})
    unsigned = {"ce-specversion": "1.0", "ce-type": "model.published", "ce-source": "attacker",
                "ce-id": uuid.uuid4().hex, "content-type": "application/json"}  # fmt: skip
    for path in ROUTES[role]:
        r = await http[role].post(path.format(name=name), content=data, headers=unsigned)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        structured = {"specversion": "1.0", "type": "model.published", "source": "attacker",
                      "id": uuid.uuid4().hex, "data": {"name": name, "version": target.version}}  # fmt: skip
        r = await http[role].post(
            path.format(name=name), content=orjson.dumps(structured),
            headers={"content-type": "application/cloudevents+json"},
        )  # fmt: skip
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    assert await production(pool, name) == before
    assert (await Registry(pool).get(name, target.version)).stage == "staging"


@pytest.mark.parametrize(
    "forgery", ["no signature", "wrong key", "ingest token as key", "tampered data", "expired", "future"]
)
async def test_a_forged_model_published_is_refused(http, settings, pool, corpus, forgery):
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    target = await register_model(settings, pool, name, mojo, rows)
    before = await production(pool, name)
    now = datetime.now(UTC)
    key = {"wrong key": "guessed", "ingest token as key": INGEST_TOKEN}.get(forgery, PUBLISH_KEY)
    time = {"expired": now - timedelta(hours=1), "future": now + timedelta(hours=1)}.get(forgery, now)
    headers, body = published(name, target.version, key=key, time=_iso(time))
    if forgery == "no signature":
        del headers[f"ce-{SIGNATURE_ATTRIBUTE}"]
    if forgery == "tampered data":
        body = orjson.dumps({"name": name, "version": before})
    r = await http["reload"].post("/events", content=body, headers=headers)
    assert r.status_code == (401 if forgery == "no signature" else 403), r.text
    assert await production(pool, name) == before


async def test_an_unsigned_or_forged_ingest_event_writes_nothing(http, pool):
    entity = f"forged-{uuid.uuid4().hex[:8]}"
    vectors = [{"entity_id": entity, "event_time": "2025-01-01T00:00:00Z", "features": {"x": 1}}]
    now = _iso(datetime.now(UTC))
    attempts = {
        "wrong key": ingest_event(vectors, "f1", now, key="guessed"),
        "publish key": ingest_event(vectors, "f2", now, key=PUBLISH_KEY),
        "expired": ingest_event(vectors, "f3", _iso(datetime.now(UTC) - timedelta(hours=2))),
    }
    unsigned = {"ce-specversion": "1.0", "ce-type": "features.ingest", "ce-source": "a", "ce-id": "f4",
                "content-type": "application/json"}  # fmt: skip
    attempts["unsigned"] = (unsigned, orjson.dumps({"vectors": vectors}))
    for what, (headers, body) in attempts.items():
        r = await http["ingest"].post("/events", content=body, headers=headers)
        assert r.status_code in (401, 403), (what, r.status_code, r.text)
    for path, headers in (("/ingest", {}), ("/ingest", {"authorization": "Bearer guessed"}),
                          ("/", {"authorization": f"Bearer {TOKEN}"})):  # fmt: skip
        r = await http["ingest"].post(path, json={"vectors": vectors}, headers=headers)
        assert r.status_code in (401, 403), (path, r.status_code, r.text)
    assert await pool.fetchval("SELECT count(*) FROM features WHERE entity_id = $1", entity) == 0


async def test_one_roles_credential_cannot_write_for_another(http, settings, pool, corpus):
    """The ingest token (what a feature producer holds) cannot promote, the publish key cannot
    call the admin API, the admin token cannot ingest."""
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    target = await register_model(settings, pool, name, mojo, rows)
    before = await production(pool, name)
    for token in (INGEST_TOKEN, PUBLISH_KEY):
        r = await http["reload"].post(
            f"/admin/models/{name}/promote", json={"version": target.version},
            headers={"authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert r.status_code == 403, r.text
    r = await http["ingest"].post(
        "/ingest",
        json={"entity_id": "x", "event_time": "2025-01-01T00:00:00Z", "features": {}},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 403, r.text
    assert await production(pool, name) == before


# -- replayed and reordered model.published -----------------------------------------------------
async def test_replayed_and_reordered_model_published_never_go_backwards(http, settings, pool, corpus):
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    older = await register_model(settings, pool, name, mojo, rows)
    newer = await register_model(settings, pool, name, mojo, rows)
    older_event, newer_event = published(name, older.version), published(name, newer.version)

    r = await http["reload"].post("/events", content=newer_event[1], headers=newer_event[0])
    assert r.status_code == 200 and r.json()["outcome"] == "promoted", r.text
    # The older version's event arrives late (reordered): acknowledged, recorded as stale.
    r = await http["reload"].post("/events", content=older_event[1], headers=older_event[0])
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "stale" and r.json()["production_version"] == newer.version
    # The newer event is redelivered: nothing to do.
    r = await http["reload"].post("/events", content=newer_event[1], headers=newer_event[0])
    assert r.status_code == 200 and r.json()["outcome"] == "current", r.text
    assert await production(pool, name) == newer.version
    assert (await Registry(pool).get(name, older.version)).stage == "staging"

    # Going back is an explicit, authenticated rollback; a later redelivery does not undo it.
    r = await http["reload"].post(f"/admin/models/{name}/rollback", headers=ADMIN)
    assert r.status_code == 200, r.text
    rolled_back_to = await production(pool, name)
    assert rolled_back_to < newer.version
    r = await http["reload"].post("/events", content=newer_event[1], headers=newer_event[0])
    assert r.status_code == 200 and r.json()["outcome"] == "stale", r.text
    assert await production(pool, name) == rolled_back_to
    # An explicit promotion may go forward again; backwards, the admin API answers 409.
    r = await http["reload"].post(
        f"/admin/models/{name}/promote", json={"version": newer.version}, headers=ADMIN
    )
    assert r.status_code == 200 and await production(pool, name) == newer.version, r.text
    r = await http["reload"].post(
        f"/admin/models/{name}/promote", json={"version": rolled_back_to}, headers=ADMIN
    )
    assert r.status_code == 409 and "rollback" in r.json()["error"], r.text
    assert await production(pool, name) == newer.version


async def test_concurrent_model_published_events_end_on_the_newest(http, settings, pool, corpus):
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    versions = [await register_model(settings, pool, name, mojo, rows) for _ in range(3)]
    events = [published(name, mv.version) for mv in versions]
    answers = await asyncio.gather(
        *(http["reload"].post("/events", content=b, headers=h) for h, b in reversed(events + events))
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert await production(pool, name) == versions[-1].version
    assert {a.json()["outcome"] for a in answers} <= {"promoted", "current", "stale"}


# -- replayed and reordered ingest events -------------------------------------------------------
async def test_replayed_and_reordered_ingest_events_write_once_and_never_go_back(http, pool):
    entity = f"order-{uuid.uuid4().hex[:8]}"
    row = {"entity_id": entity, "event_time": "2025-02-01T00:00:00Z"}
    now = datetime.now(UTC)
    original = ingest_event([{**row, "features": {"x": 1}}], f"{entity}-a", _iso(now - timedelta(seconds=30)))
    correction = ingest_event([{**row, "features": {"x": 2}}], f"{entity}-b", _iso(now - timedelta(seconds=10)))

    async def stored():
        return await pool.fetchval(
            "SELECT feature_vector->>'x' FROM features WHERE entity_id = $1", entity
        )

    # The correction is delivered first; the original arrives late and must not overwrite it.
    r = await http["ingest"].post("/events", content=correction[1], headers=correction[0])
    assert r.json() == {"received": 1, "written": 1, "duplicate": False}, r.text
    r = await http["ingest"].post("/events", content=original[1], headers=original[0])
    assert r.status_code == 200 and r.json()["written"] == 0, r.text
    assert await stored() == "2"
    # Replays of either are duplicates: acknowledged, nothing written.
    for headers, body in (original, correction, correction):
        r = await http["ingest"].post("/events", content=body, headers=headers)
        assert r.json() == {"received": 1, "written": 0, "duplicate": True}, r.text
    assert await stored() == "2"
    assert await pool.fetchval("SELECT count(*) FROM features WHERE entity_id = $1", entity) == 1
    # A newer write still lands, over HTTP too (its order: the time it was received).
    r = await http["ingest"].post("/ingest", json={**row, "features": {"x": 3}}, headers=INGEST_AUTH)
    assert r.json()["written"] == 1, r.text
    assert await stored() == "3"


# -- misspelled and mistyped features -----------------------------------------------------------
async def test_misspelled_and_mistyped_features_are_reported_or_refused(http, settings):
    """Lenient by default (H2O's own behaviour: scored as missing), but never silent; strict
    answers 422 naming each field. The schema is the MOJO's: AGE is a number, RACE has levels
    0, 1, 2; CAPSULE is the response (known, not a feature)."""
    predict = http["predict"]
    clean = {"AGE": 65.0, "RACE": "1", "DPROS": 2, "PSA": "1.5", "CAPSULE": "1"}
    r = await predict.post("/predict", json={"features": clean})
    assert r.status_code == 200 and "input_issues" not in r.json(), r.text

    bad = [{"agee": 65}, {"AGE": "sixty", "RACE": "9", "PSA": 1.5, "GLEASON": True, "DPROS": 7}]
    r = await predict.post("/predict", json={"instances": [{"features": f} for f in bad]})
    assert r.status_code == 200, r.text
    assert r.json()["input_issues"] == [
        {"row": 0, "unknown_features": ["agee"]},
        {"row": 1, "coerced_to_missing": ["AGE", "DPROS", "RACE"]},
    ]
    metrics = (await predict.get("/metrics")).text
    assert f'converge_predict_input_issues_total{{kind="unknown_features",model="{settings.default_model}"}}' in metrics

    r = await predict.post(
        "/predict", json={"instances": [{"features": f} for f in bad], "strict": True}
    )
    assert r.status_code == 422, r.text
    locs = [d["loc"] for d in r.json()["detail"]]
    assert locs == [["instances", 0, "features", "agee"], ["instances", 1, "features", "AGE"],
                    ["instances", 1, "features", "DPROS"], ["instances", 1, "features", "RACE"]]  # fmt: skip
    assert "agee" in r.json()["error"] and "AGE" in r.json()["error"]
    r = await predict.post("/predict", json={"features": clean, "strict": True})
    assert r.status_code == 200, r.text


# -- least privilege: a stolen credential of predict or ingest ------------------------------------
async def test_stolen_predict_and_ingest_credentials_cannot_write_what_their_function_does_not(
    settings, pool, corpus, start_function, postgres, pgbouncer, s3_server
):
    """predict runs on a database role that only reads and the object store's read-only
    identity; ingest on a role that writes features only. Each serves, and what it holds is
    refused for anything else (by Postgres and S3 themselves, not by converge)."""
    name = settings.default_model
    mojo, rows = corpus["binomial"]
    await register_model(settings, pool, name, mojo, rows, promote=True)
    target = await register_model(settings, pool, name, mojo, rows)
    reader = {"s3_access_key": SecretStr(s3_server.reader_access_key),
              "s3_secret_key": SecretStr(s3_server.reader_secret_key)}  # fmt: skip
    roles = {
        role: settings.model_copy(
            update={
                "database_url": SecretStr(pgbouncer.role_dsn(role)),
                "database_direct_url": SecretStr(postgres.role_dsn(role)),
                **reader,
            }
        )
        for role in ("predict", "ingest")
    }
    predict = start_function("predict", roles["predict"])
    ingest = start_function("ingest", roles["ingest"])
    await wait_ready(predict.url)
    entity = f"priv-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=30.0) as client:
        r = await client.post(
            f"{ingest.url}/ingest", headers=INGEST_AUTH,
            json={"entity_id": entity, "event_time": "2025-03-01T00:00:00Z", "features": rows[0]},
        )  # fmt: skip
        assert r.status_code == 200 and r.json()["written"] == 1, r.text
        r = await client.post(f"{predict.url}/predict", json={"entity_id": entity})
        assert r.status_code == 200, r.text

    before = await production(pool, name)
    for role, statements in {
        "predict": [
            "INSERT INTO features (entity_id, event_time, feature_vector) VALUES ('x', now(), '{}')",
            "UPDATE features SET feature_vector = '{}'",
            f"UPDATE model_versions SET stage = 'archived' WHERE name = '{name}'",
        ],
        "ingest": [
            f"UPDATE model_versions SET stage = 'archived' WHERE name = '{name}'",
            "SELECT artifact_uri FROM model_versions",
            "DELETE FROM features",
        ],
    }.items():
        conn = await asyncpg.connect(pgbouncer.role_dsn(role), statement_cache_size=0)
        try:
            for statement in statements:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        finally:
            await conn.close()
    assert await production(pool, name) == before

    store = s3_server.client(reader=True)
    key = target.artifact_uri.split(f"{s3_server.bucket}/", 1)[1]
    assert store.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read() == mojo
    for attempt in (
        lambda: store.put_object(Bucket=s3_server.bucket, Key=key, Body=b"PK\x03\x04 evil"),
        lambda: store.delete_object(Bucket=s3_server.bucket, Key=key),
    ):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)["Body"].read() == mojo


# -- Knative Eventing OIDC ---------------------------------------------------------------------
async def test_oidc_tokens_authenticate_events_where_configured(settings, pool, corpus, start_function, tmp_path):
    """With an audience configured, a bearer JWT signed by the cluster's key, for this audience,
    from an allowed subject, stands in for the signature; any other token is refused. The key set
    is read the way a mounted ConfigMap would give it (file://)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    cluster_key, other_key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    jwk = {**orjson.loads(RSAAlgorithm.to_jwk(cluster_key.public_key())), "kid": "cluster", "alg": "RS256"}
    (tmp_path / "jwks.json").write_bytes(orjson.dumps({"keys": [jwk]}))
    issuer, sender = "https://kubernetes.default.svc", "system:serviceaccount:converge:trigger-reload-oidc"
    audience = "converge-reload"
    oidc = settings.model_copy(update={
        "event_oidc_audience": audience, "event_oidc_issuer": issuer,
        "event_oidc_subjects": [sender], "event_oidc_jwks_url": f"file://{tmp_path / 'jwks.json'}",
    })  # fmt: skip
    reload_fn = start_function("reload", oidc)
    await wait_ready(reload_fn.url)

    def token(key=cluster_key, kid="cluster", **claims):
        body = {"aud": audience, "iss": issuer, "sub": sender, "exp": int(datetime.now(UTC).timestamp()) + 300}
        return jwt.encode({**body, **claims}, key, algorithm="RS256", headers={"kid": kid})

    name = settings.default_model
    mojo, rows = corpus["binomial"]
    target = await register_model(settings, pool, name, mojo, rows)
    data = {"name": name, "version": target.version}
    unsigned = {"ce-specversion": "1.0", "ce-type": "model.published", "ce-source": "broker",
                "ce-id": uuid.uuid4().hex, "content-type": "application/json"}  # fmt: skip
    async with httpx.AsyncClient(base_url=reload_fn.url, timeout=60.0) as client:
        refused = {
            "other audience": token(aud="converge-ingest"),
            "other issuer": token(iss="https://elsewhere"),
            "other subject": token(sub="system:serviceaccount:default:attacker"),
            "expired": token(exp=int(datetime.now(UTC).timestamp()) - 60),
            "key not in the set": token(key=other_key),
            "forged kid": token(key=other_key, kid="cluster"),
            "not a JWT": "abc.def.ghi",
        }
        for what, bearer in refused.items():
            r = await client.post("/events", json=data, headers={**unsigned, "authorization": f"Bearer {bearer}"})
            assert r.status_code == 403, (what, r.text)
        assert (await Registry(pool).get(name, target.version)).stage == "staging"
        r = await client.post("/events", json=data, headers=unsigned)  # no token: the signature way
        assert r.status_code == 401, r.text
        r = await client.post("/events", json=data, headers={**unsigned, "authorization": f"Bearer {token()}"})
        assert r.status_code == 200 and r.json()["outcome"] == "promoted", r.text
    assert await production(pool, name) == target.version
