"""The command line against a real gateway (`converge serve`) and the real local stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from pydantic import SecretStr

from converge.checkout import CORPUS
from converge.serving.testing import read_rows, register_model, settings_env, wait_until
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration

TOKEN = "cli-test-token"


@pytest.fixture(scope="module")
def settings(stack_settings):
    return stack_settings.model_copy(
        update={"default_model": f"cli-{uuid.uuid4().hex[:8]}", "admin_token": SecretStr(TOKEN), "registry_poll_s": 1.0}
    )


@pytest.fixture(scope="module")
async def gateway(settings, pool, tmp_path_factory):
    import httpx

    port = free_port()
    # model.published from `converge models publish` goes to this gateway's own reload function
    env = {
        **os.environ, **settings_env(settings),
        "CONVERGE_BROKER_URL": f"http://127.0.0.1:{port}/events", "CONVERGE_GRPC_PORT": str(free_port()),
    }  # fmt: skip
    log = open(tmp_path_factory.mktemp("cli") / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "converge.cli", "serve", "--port", str(port), "--grpc-port", env["CONVERGE_GRPC_PORT"]], env=env, stdout=log, stderr=log
    )

    async def up():
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_until(up, timeout=60)
    yield f"http://127.0.0.1:{port}", env
    proc.terminate()
    proc.wait(10)


def converge(env, *args):
    return subprocess.run([sys.executable, "-m", "converge.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def test_ingest_a_csv_file_twice_stores_it_once(gateway, tmp_path):
    url, env = gateway
    path = tmp_path / "sales.csv"
    path.write_text(
        "ts,store,units,city\n"
        + "".join(f"2024-01-{d:02d}T00:00:00Z,cli-{uuid.uuid4().hex[:4]}-{d},{d},Oslo\n" for d in range(1, 11))
    )
    args = ["ingest", str(path), "--time-column", "ts", "--entity-column", "store", "--url", url, "--json"]
    first = converge(env, *args)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"file": str(path), "rows": 10, "written": 10}
    again = converge(env, *args)
    assert json.loads(again.stdout)["written"] == 0


def test_ingest_names_the_file_and_the_problem(gateway, tmp_path):
    url, env = gateway
    path = tmp_path / "naive.csv"
    path.write_text("ts,store,units\nyesterday,s1,3\n")
    result = converge(env, "ingest", str(path), "--time-column", "ts", "--entity-column", "store", "--url", url)
    assert result.returncode == 2
    assert str(path) in result.stderr and "'ts'" in result.stderr
    assert "Traceback" not in result.stderr


async def test_models_list_promote_versions_rollback(gateway, settings, pool):
    url, env = gateway
    name = settings.default_model
    mojo = (CORPUS / "binomial.zip").read_bytes()
    rows = read_rows(CORPUS / "binomial.input.csv", 10)
    await register_model(settings, pool, name, mojo, rows, promote=True)
    await register_model(settings, pool, name, mojo, rows)
    env = {**env, "CONVERGE_ADMIN_URL": url}

    listed = json.loads(converge(env, "models", "list", "--json").stdout)
    mine = next(m for m in listed if m["name"] == name)
    assert (mine["versions"], mine["production_version"]) == (2, 1)

    promoted = converge(env, "models", "promote", name, "2")
    assert promoted.returncode == 0, promoted.stderr
    stages = {v["version"]: v["stage"] for v in json.loads(converge(env, "models", "versions", name, "--json").stdout)}
    assert stages == {2: "production", 1: "archived"}

    assert converge(env, "models", "rollback", name).returncode == 0
    stages = {v["version"]: v["stage"] for v in json.loads(converge(env, "models", "versions", name, "--json").stdout)}
    assert stages[1] == "production" and stages[2] != "production"


def test_models_with_a_wrong_token_fail_clearly(gateway):
    url, env = gateway
    result = converge({**env, "CONVERGE_ADMIN_URL": url, "CONVERGE_ADMIN_TOKEN": "wrong"}, "models", "list")
    assert result.returncode == 2
    assert "403" in result.stderr and "Traceback" not in result.stderr


async def test_predict_reads_csv_and_prints_json_or_a_table(gateway, settings, pool):
    url, env = gateway
    name = f"{settings.default_model}-p"
    mojo = (CORPUS / "binomial.zip").read_bytes()
    rows = read_rows(CORPUS / "binomial.input.csv", 3)
    await register_model(settings, pool, name, mojo, rows, promote=True)
    header = list(rows[0])
    text = ",".join(header) + "\n" + "\n".join(
        ",".join("" if r[k] is None else str(r[k]) for k in header) for r in rows
    )

    def run(*extra):
        return subprocess.run(
            [sys.executable, "-m", "converge.cli", "predict", "-", "--url", url, "--model", name, *extra],
            input=text, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    as_json = run("--json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["model"] == name and len(body["predictions"]) == 3
    as_table = run()
    assert as_table.returncode == 0, as_table.stderr
    for prediction in body["predictions"]:
        assert str(prediction["label"]) in as_table.stdout


async def test_a_mojo_trained_elsewhere_is_published_validated_and_served(gateway, settings, tmp_path):
    """`converge models publish`: genmodel computes the validation answers (a JVM is here), the
    model.published event reaches the reload function, which re-scores them and promotes."""
    import httpx

    from converge.reference import GenmodelReference

    url, env = gateway
    env = {**env, "CONVERGE_ADMIN_URL": url}
    name = f"byo-{uuid.uuid4().hex[:8]}"
    mojo = tmp_path / "model.zip"
    mojo.write_bytes((CORPUS / "binomial.zip").read_bytes())
    lines = (CORPUS / "binomial.input.csv").read_text().splitlines()
    validation = tmp_path / "rows.csv"
    validation.write_text("\n".join(lines[:11]) + "\n")

    done = converge(env, "models", "publish", str(mojo), "--name", name, "--validation", str(validation), "--json")
    assert done.returncode == 0, done.stderr
    published = json.loads(done.stdout)
    assert published["version"] == 1 and published["event"]["delivered"], published
    assert published["validation"] == {"source": "genmodel", "rows": 10, "rows_from": "user"}

    async def production():
        listed = json.loads(converge(env, "models", "list", "--json").stdout)
        return next((m["production_version"] for m in listed if m["name"] == name), None)

    assert await wait_until(production, timeout=60) == 1
    rows = read_rows(CORPUS / "binomial.input.csv", 5)
    reference = GenmodelReference(mojo.read_bytes())
    expected = reference.predict(
        [{k: str(int(v)) if reference.is_categorical(k) and isinstance(v, float) else v for k, v in r.items()} for r in rows]
    )
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        answer = await client.post("/predict", json={"model": name, "instances": [{"features": r} for r in rows]})
    assert answer.status_code == 200, answer.text
    assert [p["label"] for p in answer.json()["predictions"]] == [e["predict"] for e in expected]

    again = json.loads(converge(env, "models", "publish", str(mojo), "--name", name, "--json").stdout)
    assert again["version"] == 2 and again["validation"]["rows_from"] == "the MOJO's schema"
    assert await wait_until(lambda: _is(production, 2), timeout=60)


async def _is(check, value):
    return await check() == value


def test_publish_refuses_bad_files_and_names_clearly(gateway, tmp_path):
    url, env = gateway
    env = {**env, "CONVERGE_ADMIN_URL": url}
    not_zip = tmp_path / "model.zip"
    not_zip.write_text("not a zip")
    done = converge(env, "models", "publish", str(not_zip), "--name", "m")
    assert done.returncode == 2 and str(not_zip) in done.stderr and "Traceback" not in done.stderr

    fake = tmp_path / "fake.zip"
    import zipfile

    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("model.ini", "[info]\nalgorithm = nope\n")
    done = converge(env, "models", "publish", str(fake), "--name", "m")
    assert done.returncode == 2 and "not a readable H2O MOJO" in done.stderr, done.stderr

    mojo = CORPUS / "binomial.zip"
    for name in ("../../etc", "a/b", "..", "x" * 200):
        done = converge(env, "models", "publish", str(mojo), "--name", name)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (name, done.stderr)
        assert "422" in done.stderr or "404" in done.stderr, (name, done.stderr)


async def test_serve_answers_the_v2_grpc_api_on_its_second_port(gateway, settings, pool):
    """Triton's gRPC client (its own interpreter: see v2_grpc_clients.py) against `converge serve`."""
    url, env = gateway
    await register_model(
        settings, pool, settings.default_model, (CORPUS / "binomial.zip").read_bytes(),
        read_rows(CORPUS / "binomial.input.csv", 5), promote=True,
    )  # fmt: skip
    probe = (
        "import sys, tritonclient.grpc as g; c = g.InferenceServerClient(sys.argv[1]); "
        "m = c.get_model_metadata(sys.argv[2], as_json=True); "
        "print(c.is_server_live(), c.is_model_ready(sys.argv[2]), len(m['inputs']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, f"127.0.0.1:{env['CONVERGE_GRPC_PORT']}", settings.default_model],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    from converge.mojo import load_mojo

    features = len(load_mojo((CORPUS / "binomial.zip").read_bytes()).feature_names)
    assert done.stdout.split() == ["True", "True", str(features)]


async def test_models_promote_with_a_canary_starts_a_rollout_and_rollout_stop_ends_it(gateway, settings, pool):
    url, env = gateway
    env = {**env, "CONVERGE_ADMIN_URL": url}
    name = f"cli-canary-{uuid.uuid4().hex[:6]}"
    mojo = (CORPUS / "binomial.zip").read_bytes()
    rows = read_rows(CORPUS / "binomial.input.csv", 6)
    await register_model(settings, pool, name, mojo, rows, promote=True)
    await register_model(settings, pool, name, mojo, rows)

    both = converge(env, "models", "promote", name, "2", "--canary", "10", "--shadow")
    assert both.returncode == 2 and "choose one" in both.stderr
    started = converge(env, "models", "promote", name, "2", "--canary", "12.5", "--max-error-rate", "0.05", "--json")
    assert started.returncode == 0, started.stderr
    rollout = json.loads(started.stdout)
    assert (rollout["mode"], rollout["percent"], rollout["baseline"], rollout["state"]) == ("canary", 12.5, 1, "active")
    assert rollout["thresholds"]["max_error_rate"] == 0.05
    again = converge(env, "models", "promote", name, "2", "--shadow")
    assert again.returncode == 2 and "409" in again.stderr and "already trying version 2" in again.stderr
    shown = converge(env, "models", "rollout", name)
    assert shown.returncode == 0 and "active" in shown.stdout
    stopped = json.loads(converge(env, "models", "rollout", name, "--stop", "--json").stdout)
    assert stopped["state"] == "stopped"
