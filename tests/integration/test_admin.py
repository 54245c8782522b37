"""The admin API in the local gateway (``converge serve``): auth, registry views, promote,
rollback, reload, OpenAPI docs."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr

from converge.checkout import CORPUS
from converge.registry import Registry
from converge.serving.web.gateway import create_gateway
from converge.serving.runtime import Runtime
from converge.serving.testing import (
    InProcessServer,
    read_rows,
    register_model,
    wait_until,
)
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration

TOKEN = "admin-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def settings(stack_settings):
    return stack_settings.model_copy(
        update={
            "default_model": f"admin-{uuid.uuid4().hex[:8]}",
            "admin_token": SecretStr(TOKEN),
            "registry_poll_s": 1.0,
        }
    )


@pytest.fixture(scope="module")
async def gateway(settings, pool):
    mojo = (CORPUS / "binomial.zip").read_bytes()
    rows = read_rows(CORPUS / "binomial.input.csv", 6)
    await register_model(settings, pool, settings.default_model, mojo, rows, promote=True)
    await register_model(settings, pool, settings.default_model, mojo, rows)
    server = await InProcessServer(create_gateway(Runtime(settings)), free_port()).start()
    yield server
    await server.stop()


@pytest.fixture
async def client(gateway):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60.0) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Basic YWRtaW46YWRtaW4="}, 401),
        ({"authorization": "Bearer"}, 401),
        ({"authorization": "Bearer a b"}, 401),
        ({"authorization": "Bearer wrong-token"}, 403),
        (AUTH, 200),
    ],
)
async def test_bearer_token(client, headers, status):
    r = await client.get("/admin/models", headers=headers)
    assert r.status_code == status, r.text
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
        assert "error" in r.json()


async def test_every_admin_route_needs_the_token(client, settings):
    name = settings.default_model
    for method, path in [
        ("GET", "/admin/models"),
        ("GET", f"/admin/models/{name}/versions"),
        ("GET", f"/admin/models/{name}/production"),
        ("POST", f"/admin/models/{name}/promote"),
        ("POST", f"/admin/models/{name}/rollback"),
        ("POST", f"/admin/models/{name}/publish"),
        ("POST", f"/admin/models/{name}/rollout"),
        ("GET", f"/admin/models/{name}/rollout"),
        ("DELETE", f"/admin/models/{name}/rollout"),
        ("POST", "/admin/reload-model"),
    ]:
        r = await client.request(method, path, json={"name": name, "version": 1})
        assert r.status_code == 401, (method, path, r.text)


async def test_without_a_configured_token_admin_is_refused(settings):
    open_settings = settings.model_copy(update={"admin_token": SecretStr("")})
    server = await InProcessServer(create_gateway(Runtime(open_settings)), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for headers in ({}, {"authorization": "Bearer anything"}, AUTH):
                r = await client.get("/admin/models", headers=headers)
                assert r.status_code == 403, r.text
    finally:
        await server.stop()


async def test_registry_views_and_docs(client, settings):
    name = settings.default_model
    models = (await client.get("/admin/models", headers=AUTH)).json()
    mine = next(m for m in models if m["name"] == name)
    assert mine["production_version"] == 1 and mine["latest_version"] == 2
    versions = (await client.get(f"/admin/models/{name}/versions", headers=AUTH)).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["validation_rows"] == 6 and "validation_sample" not in versions[0]
    missing = await client.get("/admin/models/nope-nope/versions", headers=AUTH)
    assert missing.status_code == 404
    bad_name = await client.get("/admin/models/..%2Fetc/versions", headers=AUTH)
    assert bad_name.status_code in (404, 422)
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/admin/reload-model" in spec["paths"]


async def test_promote_reload_and_rollback_move_what_predict_serves(client, settings, pool):
    name = settings.default_model
    rows = read_rows(CORPUS / "binomial.input.csv", 1)

    async def serving() -> int:
        r = await client.post("/predict", json={"features": rows[0]})
        assert r.status_code == 200, r.text
        return r.json()["version"]

    await wait_until(lambda: _ready(client), timeout=60)
    assert await serving() == 1

    promoted = await client.post(f"/admin/models/{name}/promote", json={"version": 2}, headers=AUTH)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["validated_rows"] == 6
    assert await serving() == 2  # same process: swapped before the answer

    rolled = await client.post(f"/admin/models/{name}/rollback", headers=AUTH)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 1

    async def back_to_one():
        return await serving() == 1

    await wait_until(back_to_one, timeout=15, interval=0.2)
    assert (await Registry(pool).production(name)).version == 1

    reloaded = await client.post(
        "/admin/reload-model", json={"name": name, "version": 2}, headers=AUTH
    )
    assert reloaded.status_code == 200, reloaded.text
    assert await serving() == 2


async def test_admin_bad_input(client, settings):
    name = settings.default_model
    r = await client.post(
        "/admin/reload-model",
        content=b"{nope",
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == 400
    r = await client.post("/admin/reload-model", json={"name": name}, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "version"
    r = await client.post("/admin/reload-model", json={"name": name, "version": 99}, headers=AUTH)
    assert r.status_code == 404


async def _ready(client) -> bool:
    return (await client.get("/readyz")).status_code == 200
