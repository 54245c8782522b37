"""Dockerfiles, Knative Functions descriptors, kn scripts and the deploy Taskfile agree with the chart."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from converge.checkout import REPO
from deploy_support import CHART, render, yaml

DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
FUNCTIONS = ("predict", "reload", "ingest")
KN_FUNCTIONS = ("predict", "predict-grpc", "reload", "ingest")  # gRPC: its own Service (port h2c)
CHART_VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_three_images_exist():
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.functions", "Dockerfile.training", "Dockerfile.h2o"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_image_is_a_pinned_python_slim_bookworm(dockerfile):
    ins = instructions(dockerfile)
    args = dict(a.split("=", 1) for k, a in ins if k == "ARG" and "=" in a)
    bases = [a.split()[0] for k, a in ins if k == "FROM"]
    assert bases
    for base in bases:
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_runs_as_a_non_root_user(dockerfile):
    ins = instructions(dockerfile)
    last_stage = ins[max(i for i, (k, _) in enumerate(ins) if k == "FROM"):]
    users = [a for k, a in last_stage if k == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    uid = int(users[-1].split(":")[0])
    assert uid == CHART_VALUES["podSecurityContext"]["runAsUser"], "image and chart disagree on the UID"
    assert not any("docker" in a and ("dind" in a or "docker.sock" in a) for _, a in ins), "no Docker-in-Docker"


@pytest.mark.parametrize(("name", "lock", "extra"), [("functions", "serve.lock", "$extras"), ("training", "train.lock", "train")])
def test_python_images_install_from_their_lock_file(name, lock, extra):
    ins = instructions(DOCKER / f"Dockerfile.{name}")
    copies = " ".join(a for k, a in ins if k == "COPY")
    runs = " ".join(a for k, a in ins if k == "RUN")
    assert f"requirements/{lock}" in copies
    assert re.search(rf"pip install .*-c requirements/{re.escape(lock)} \"\.\[{re.escape(extra)}\]\"", runs), runs
    assert (REPO / "requirements" / lock).is_file()
    assert "# syntax=" in (DOCKER / f"Dockerfile.{name}").read_text().splitlines()[0]


def test_function_image_has_a_genmodel_variant_with_a_jre():
    """SCORER=genmodel adds the jvm extra (JPype, the h2o wheel's jar) and a JRE; the default
    image has neither. The variant tells training what it can score (CONVERGE_SERVING_SCORER)."""
    text = (DOCKER / "Dockerfile.functions").read_text()
    runs = " ".join(a for k, a in instructions(DOCKER / "Dockerfile.functions") if k == "RUN")
    assert "ARG SCORER=native" in text
    assert "native) extras=serve ;;" in runs and "genmodel) extras=serve,jvm ;;" in runs
    assert 'if [ "$SCORER" = genmodel ]' in runs and "openjdk-17-jre-headless" in runs
    assert "CONVERGE_SERVING_SCORER=${SCORER}" in text
    jvm = re.search(r"^jvm = \[(.*)\]$", (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert "jpype1==" in jvm and "h2o==3.46.0.11" in jvm


def test_function_image_serves_functions_main_with_the_asgi_framework_on_8080():
    ins = instructions(DOCKER / "Dockerfile.functions")
    entry = " ".join(a for k, a in ins if k == "ENTRYPOINT")
    for needle in ("converge.serving.serve_function", "--source functions/main.py", '--target \\"$FUNCTION_TARGET\\"', "8080"):
        assert needle in entry, needle
    assert ("EXPOSE", "8080") in ins
    assert (REPO / "functions" / "main.py").is_file()
    main = (REPO / "functions" / "main.py").read_text()
    for target in FUNCTIONS:
        assert re.search(rf"^async def {target}\(", main, re.M), f"functions/main.py has no target {target}"


def test_training_image_runs_the_mage_project_the_chart_expects():
    ins = instructions(DOCKER / "Dockerfile.training")
    project = next(a.split("=", 1)[1] for k, a in ins if k == "ARG" and a.startswith("MAGE_PROJECT="))
    assert project == CHART_VALUES["mage"]["projectPath"]
    assert (REPO / project / "metadata.yaml").is_file(), "the Mage project directory holds metadata.yaml"
    assert "mage start" in " ".join(a for k, a in ins if k == "ENTRYPOINT")


def test_h2o_image_ships_the_scripts_the_chart_probes_with():
    ins = instructions(DOCKER / "Dockerfile.h2o")
    copies = " ".join(a for k, a in ins if k == "COPY")
    assert "charts/converge/files/h2o_heap.py" in copies and "charts/converge/files/h2o_ready.py" in copies
    assert "h2o==3.46.0.11" in " ".join(a for k, a in ins if k == "RUN")
    assert CHART_VALUES["h2o"]["image"]["tag"] == "3.46.0.11"


def test_dockerignore_keeps_environments_and_git_out_of_the_context():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".venv-*"} <= set(ignored)
    for dockerfile in DOCKERFILES:
        for k, a in instructions(dockerfile):
            if k == "COPY" and "--from" not in a:
                for src in shlex.split(a)[:-1]:
                    if not src.startswith("--") and "$" not in src:
                        assert (REPO / src).exists(), f"{dockerfile.name}: {src} missing"


# --- func.yaml ---------------------------------------------------------------------------------


FUNC_KEYS = {"specVersion", "name", "domain", "runtime", "registry", "image", "namespace", "created", "invoke", "build", "run", "deploy"}
FUNC_DEPLOY_KEYS = {"namespace", "image", "annotations", "options", "labels", "healthEndpoints", "serviceAccountName", "subscriptions"}


@pytest.mark.parametrize("target", FUNCTIONS)
def test_func_yaml_matches_the_chart(target):
    from datetime import datetime

    spec = yaml.safe_load((REPO / "functions" / target / "func.yaml").read_text())
    # The func.yaml format (knative/func) rejects unknown keys and needs specVersion and created.
    assert set(spec) <= FUNC_KEYS and set(spec["deploy"]) <= FUNC_DEPLOY_KEYS
    assert set(spec["run"]) <= {"volumes", "envs", "podSecurityContext", "startTimeout"}
    assert spec["specVersion"] and datetime.fromisoformat(spec["created"])
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", spec["name"])
    assert {"path": "/tmp", "emptyDir": {"sizeLimit": "256Mi"}} in spec["run"]["volumes"]
    images = CHART_VALUES["images"]["functions"]
    assert spec["image"] == f"{images['repository']}:{images['tag']}"
    envs = {e["name"]: e["value"] for e in spec["run"]["envs"]}
    assert envs["FUNCTION_TARGET"] == target
    assert spec["deploy"]["healthEndpoints"] == {"liveness": "/healthz", "readiness": "/readyz"}
    assert spec["deploy"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"
    assert spec["deploy"]["options"]["scale"]["min"] == 0
    credentials = {"predict": ("CONVERGE_ROLLOUT_KEY",), "ingest": ("CONVERGE_INGEST_TOKEN",),
                   "reload": ("CONVERGE_ADMIN_TOKEN", "CONVERGE_PUBLISH_KEY", "CONVERGE_ROLLOUT_KEY")}[target]  # fmt: skip
    assert {n for n in envs if n.endswith(("_TOKEN", "_KEY")) and "S3" not in n} == set(credentials)
    s3 = () if target == "ingest" else ("CONVERGE_S3_ACCESS_KEY", "CONVERGE_S3_SECRET_KEY")
    assert ("CONVERGE_S3_ACCESS_KEY" in envs) == bool(s3)  # ingest never touches the object store
    for name in (*s3, "CONVERGE_DB_PASSWORD", *credentials):
        assert re.fullmatch(r"\{\{ secret:[\w-]+:[\w-]+ \}\}", envs[name]), name
    # Secret names and keys in func.yaml are those the chart creates for a release named "converge".
    converge = _render_as_converge()
    secrets = {d["metadata"]["name"]: set(d["data"]) for d in converge.kind("Secret")}
    for value in envs.values():
        for sname, key in re.findall(r"\{\{ secret:([\w-]+):([\w-]+) \}\}", value):
            assert key in secrets.get(sname, set()), f"{sname}:{key}"
    ksvc = converge.get("Service", f"converge-{target}")
    chart_env = {e["name"]: e.get("value") for e in ksvc["spec"]["template"]["spec"]["containers"][0]["env"]}
    for name, value in envs.items():
        if "{{" not in value and name in chart_env:
            assert chart_env[name] == value, name


_CONVERGE = []


def _render_as_converge():
    """The chart as func.yaml and deploy/kn assume it: release "converge" in namespace "converge"."""
    if not _CONVERGE:
        _CONVERGE.append(render({}, "converge", release="converge", namespace="converge"))
    return _CONVERGE[0]


# --- kn scripts and Taskfile -------------------------------------------------------------------


def _kn_commands(script: str, tmp_path: Path, *args: str) -> list[list[str]]:
    """Run a kn script with KN pointing at a recorder that prints each invocation as JSON."""
    recorder = tmp_path / "kn"
    recorder.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    recorder.chmod(0o755)
    proc = subprocess.run(
        ["bash", str(REPO / "deploy" / "kn" / script), *args],
        env={"PATH": os.environ["PATH"], "KN": str(recorder), "KN_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_kn_scripts_pass_bash_syntax_check():
    for script in (REPO / "deploy" / "kn").glob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)


def test_kn_service_apply_deploys_the_same_functions_as_the_chart(tmp_path):
    commands = _kn_commands("services.sh", tmp_path)
    assert [c[2] for c in commands] == [f"converge-{t}" for t in KN_FUNCTIONS]
    chart = _render_as_converge()
    secrets = {d["metadata"]["name"]: set(d["data"]) for d in chart.kind("Secret")}
    for cmd, target in zip(commands, KN_FUNCTIONS):
        text = " ".join(cmd)
        grpc = target == "predict-grpc"
        role = "predict" if grpc else target
        assert f"--env FUNCTION_TARGET={target}" in text
        assert "--scale-min 0" in text
        assert f"--user {CHART_VALUES['functions']['containerSecurityContext']['runAsUser']}" in text
        if grpc:
            assert "--port h2c:8080" in text and "--probe-readiness tcp::8080" in text
        else:
            assert "--port http1:8080" in text
            assert "--probe-liveness http::8080:/healthz" in text and "--probe-readiness http::8080:/readyz" in text
        assert "--image ghcr.io/converge-ml/converge-functions:0.1.0" in text
        refs = re.findall(r"--env-value-from (\w+)=secret:([\w-]+):([\w-]+)", text)
        s3 = set() if role == "ingest" else {"CONVERGE_S3_ACCESS_KEY", "CONVERGE_S3_SECRET_KEY"}
        assert {r[0] for r in refs} >= s3 | {"CONVERGE_DB_PASSWORD"}
        assert not ({"CONVERGE_S3_ACCESS_KEY", "CONVERGE_S3_SECRET_KEY"} - s3) & {r[0] for r in refs}
        credentials = {r[0] for r in refs if r[0].endswith(("_TOKEN", "_KEY")) and "S3" not in r[0]}
        assert credentials == {"predict": {"CONVERGE_ROLLOUT_KEY"}, "ingest": {"CONVERGE_INGEST_TOKEN"},
                               "reload": {"CONVERGE_ADMIN_TOKEN", "CONVERGE_PUBLISH_KEY",
                                          "CONVERGE_ROLLOUT_KEY"}}[role]  # fmt: skip
        for _, sname, key in refs:
            assert key in secrets[sname], f"{sname}:{key}"
        # Same literal settings as the chart renders.
        ksvc = chart.get("Service", f"converge-{target}")
        chart_env = {e["name"]: e.get("value") for e in ksvc["spec"]["template"]["spec"]["containers"][0]["env"]}
        for name, value in re.findall(r"--env (CONVERGE_\w+)=(\S+)", text):
            assert chart_env[name] == value, name
        values = CHART_VALUES["functions"]["predictGrpc" if grpc else target]
        assert ("--cluster-local" in cmd) == (values["visibility"] == "cluster-local")


def test_kn_eventing_creates_broker_dead_letter_and_triggers(tmp_path):
    commands = _kn_commands("eventing.sh", tmp_path)
    text = [" ".join(c) for c in commands]
    assert text[0].startswith("broker create converge-dead-letter")
    assert "--dl-sink broker:converge-dead-letter" in text[1] and "--retry 5" in text[1]
    triggers = {c[2]: c for c in commands if c[0] == "trigger"}
    assert set(triggers) == {"converge-ingest", "converge-reload", "converge-rollout"}
    assert "type=rollout.decided" in triggers["converge-rollout"]
    assert "http://converge-reload.converge.svc.cluster.local/events" in triggers["converge-rollout"]
    assert "type=features.ingest" in triggers["converge-ingest"]
    assert "http://converge-ingest.converge.svc.cluster.local/events" in triggers["converge-ingest"]
    assert "type=model.published" in triggers["converge-reload"]
    assert "http://converge-reload.converge.svc.cluster.local/events" in triggers["converge-reload"]


def test_deploy_taskfile_uses_kn_service_apply_and_kn_trigger_create():
    taskfile = yaml.safe_load((REPO / "deploy" / "Taskfile.deploy.yml").read_text())
    assert taskfile["version"] == "3"
    tasks = taskfile["tasks"]
    assert {"functions", "eventing", "triggers", "check", "tools", "images"} <= set(tasks)
    assert "deploy/kn/services.sh" in str(tasks["functions"]["cmds"])
    services = (REPO / "deploy" / "kn" / "services.sh").read_text()
    assert "service apply" in services and '$KN "${args[@]}"' in services
    assert all("kn trigger create" in c for c in tasks["triggers"]["cmds"])
    for task in tasks.values():
        assert task.get("desc"), "every task says what it does"
