"""The schema is migrated on every delivery path, before the functions run on it, and `helm test`
checks a prediction end to end.

Helm's order, which these tests replay on the rendered chart: the hooks of ``pre-<event>`` (by
weight; Helm waits for a hook Job to complete), then the release's own manifests, then the hooks
of ``post-<event>``. A fresh install with the chart's own Postgres cannot migrate before the
release (the server is part of it), so there the Job is the first post-install hook and the
functions say "schema missing" on /readyz until it has run
(tests/integration/test_readiness_schema.py).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from deploy_support import VALUE_SETS, Rendered, render

FULL = "demo-converge"
JOB = f"{FULL}-migrations"


def _hooks(doc: dict) -> set[str]:
    value = (doc["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    return {h.strip() for h in value.split(",") if h.strip()}


def _weight(doc: dict) -> int:
    return int((doc["metadata"].get("annotations") or {}).get("helm.sh/hook-weight", "0"))


def helm_sequence(r: Rendered, event: str) -> list[tuple[str, str, str]]:
    """(phase, kind, name) in the order Helm creates them for ``event`` (install or upgrade)."""
    pre = sorted((d for d in r.docs if f"pre-{event}" in _hooks(d)), key=lambda d: (_weight(d), d["metadata"]["name"]))
    main = [d for d in r.docs if not _hooks(d)]
    post = sorted((d for d in r.docs if f"post-{event}" in _hooks(d)), key=lambda d: (_weight(d), d["metadata"]["name"]))
    return [(phase, d["kind"], d["metadata"]["name"]) for phase, docs in (("pre", pre), ("main", main), ("post", post)) for d in docs]


def _position(seq, kind: str, name: str) -> int:
    return next(i for i, (_, k, n) in enumerate(seq) if k == kind and n == name)



def _knative_positions(r: Rendered, seq) -> list[int]:
    names = {d["metadata"]["name"] for d in r.kind("Service", "serving.knative.dev")}
    assert names, "no Knative Services rendered"
    return [i for i, (_, k, n) in enumerate(seq) if k == "Service" and n in names]


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_upgrades_migrate_before_any_function_revision(name):
    r = render(VALUE_SETS[name], name)
    seq = helm_sequence(r, "upgrade")
    job = _position(seq, "Job", JOB)
    assert seq[job][0] == "pre", seq[job]
    assert all(job < i for i in _knative_positions(r, seq))
    # its ServiceAccount exists before it, in the same phase
    sa = _position(seq, "ServiceAccount", JOB)
    assert seq[sa][0] == "pre" and sa < job


@pytest.mark.parametrize("name", ["external", "functions-only"])
def test_a_fresh_install_on_an_existing_database_migrates_before_the_functions(name):
    r = render(VALUE_SETS[name], name)
    seq = helm_sequence(r, "install")
    job = _position(seq, "Job", JOB)
    assert seq[job][0] == "pre"
    assert all(job < i for i in _knative_positions(r, seq))


def test_a_fresh_install_with_its_own_postgres_migrates_first_thing_after_it():
    r = render({}, "fresh")
    seq = helm_sequence(r, "install")
    job = _position(seq, "Job", JOB)
    assert seq[_position(seq, "StatefulSet", f"{FULL}-postgresql")][0] == "main"
    post = [i for i, (phase, kind, _) in enumerate(seq) if phase == "post" and kind == "Job"]
    assert seq[job][0] == "post" and job == min(post), seq  # before the bucket Job too
    # until then the functions are not ready, and say why
    predict = r.get("Service", f"{FULL}-predict")
    probe = predict["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
    assert probe == "/readyz"


@pytest.mark.parametrize("name", ["defaults", "external"])
def test_the_job_is_idempotent_least_privilege_and_fails_the_release(name):
    r = render(VALUE_SETS[name], name)
    job = r.get("Job", JOB)
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    sa_ann = r.get("ServiceAccount", JOB)["metadata"]["annotations"]
    assert sa_ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert sa_ann["helm.sh/hook"] == ann["helm.sh/hook"] and int(sa_ann["helm.sh/hook-weight"]) < int(ann["helm.sh/hook-weight"])
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1 and spec["activeDeadlineSeconds"] > 0
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == JOB and pod["automountServiceAccountToken"] is False
    assert r.get("ServiceAccount", JOB)["automountServiceAccountToken"] is False
    # No Role or RoleBinding: the Job needs no Kubernetes API at all.
    assert not [d for d in r.docs if d["kind"] in ("Role", "RoleBinding", "ClusterRoleBinding")
                and JOB in str(d)]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "converge.cli", "migrate"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in container["env"]}
    url = urlsplit(env["CONVERGE_DATABASE_URL"]["value"])
    assert url.username == "converge_migrator"  # its own role, not the functions'
    assert url.password == "$(CONVERGE_MIGRATOR_PASSWORD)"
    assert "pgbouncer" not in url.hostname  # DDL goes straight to Postgres
    secret = env["CONVERGE_MIGRATOR_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
    functions_env = {e["name"]: e for e in r.get("Service", f"{FULL}-predict")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert urlsplit(functions_env["CONVERGE_DATABASE_URL"]["value"]).username != url.username
    assert secret != functions_env["CONVERGE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]


def test_the_functions_role_may_only_read_and_write_what_the_migrations_create():
    r = render({}, "defaults")
    script = r.get("ConfigMap", f"{FULL}-postgresql-init")["data"]["10-converge.sh"]
    assert 'CREATE DATABASE :"db" OWNER :"migrator";' in script
    assert re.search(r'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"user"', script)
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in script
    assert 'OWNER :"user"' not in script.replace('CREATE DATABASE :"magedb" OWNER :"user"', "")
    postgres_env = {e["name"] for e in r.get("StatefulSet", f"{FULL}-postgresql")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"MIGRATOR_USER", "MIGRATOR_PASSWORD"} <= postgres_env


def test_migrations_can_be_switched_off():
    r = render({"migrations": {"enabled": False}}, "no-migrations")
    assert JOB not in r.names("Job")
    script = r.get("ConfigMap", f"{FULL}-postgresql-init")["data"]["10-converge.sh"]
    assert "migrator" not in script


def test_helm_test_predicts_end_to_end():
    r = render({}, "defaults")
    pod = r.get("Pod", f"{FULL}-test-predict")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "converge.serving.predict_check"]
    url = urlsplit(container["command"][3])
    assert url.hostname == f"{FULL}-predict.ml.svc.cluster.local"
    env = {e["name"]: e for e in container["env"]}
    # it reads the registry (validation sample) with the functions' own settings and Secrets
    assert "secretKeyRef" in env["CONVERGE_DB_PASSWORD"]["valueFrom"]
    assert env["CONVERGE_DEFAULT_MODEL"]["value"] == "demo"
