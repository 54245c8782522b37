"""The Helm chart, rendered offline with several value sets: valid, consistent and locked down."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# cloudcoil's generated models shadow two pydantic attributes; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:Field name .* shadows an attribute:UserWarning")

from deploy_support import CHART, NAMESPACE, RELEASE, VALUE_SETS, Rendered, checkov_binary, helm, render, yaml

FULL = f"{RELEASE}-converge"
FUNCTIONS = ("predict", "reload", "ingest")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "Pod")
# The variables settings.py reads that the functions need (see the brief and DESIGN.md).
FUNCTION_ENV = {
    "CONVERGE_DATABASE_URL",
    "CONVERGE_REDIS_URL",
    "CONVERGE_S3_ENDPOINT_URL",
    "CONVERGE_S3_ACCESS_KEY",
    "CONVERGE_S3_SECRET_KEY",
    "CONVERGE_S3_BUCKET",
    "CONVERGE_BROKER_URL",
    "CONVERGE_DEFAULT_MODEL",
}
SECRET_ENV = {"CONVERGE_S3_ACCESS_KEY", "CONVERGE_S3_SECRET_KEY"}
# Each credential only where it is checked or used; predict, which writes nothing, gets none.
CREDENTIALS = {"CONVERGE_ADMIN_TOKEN", "CONVERGE_PUBLISH_KEY", "CONVERGE_INGEST_TOKEN", "CONVERGE_ROLLOUT_KEY"}
ROLE_CREDENTIALS = {
    "predict": {"CONVERGE_ROLLOUT_KEY"},  # asks reload to carry out a promotion it recorded
    "ingest": {"CONVERGE_INGEST_TOKEN"},
    "reload": {"CONVERGE_ADMIN_TOKEN", "CONVERGE_PUBLISH_KEY", "CONVERGE_ROLLOUT_KEY"},
}
SETS = list(VALUE_SETS)


def ksvcs(r: Rendered) -> list[dict]:
    return r.kind("Service", "serving.knative.dev/")


def core_services(r: Rendered) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in r.kind("Service", "v1")}


def pod_specs(r: Rendered) -> list[tuple[str, dict, dict]]:
    """(name, pod metadata, pod spec) of every workload, Knative revisions included."""
    out = []
    for d in r.docs:
        if d["kind"] == "Pod":
            out.append((d["metadata"]["name"], d["metadata"], d["spec"]))
        elif d["kind"] in WORKLOAD_KINDS:
            out.append((d["metadata"]["name"], d["spec"]["template"]["metadata"], d["spec"]["template"]["spec"]))
    for d in ksvcs(r):
        out.append((d["metadata"]["name"], d["spec"]["template"]["metadata"], d["spec"]["template"]["spec"]))
    return out


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def function_container(r: Rendered, target: str) -> dict:
    svc = r.get("Service", f"{FULL}-{target}")
    (container,) = svc["spec"]["template"]["spec"]["containers"]
    return container


# --- Helm: lint, schema ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SETS)
def test_chart_lints_clean_for_every_value_set(name):
    report = helm.lint(CHART, VALUE_SETS[name], strict=True, namespace=NAMESPACE, kube_version="v1.32.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize(
    "bad",
    [
        {"fuctions": {}},
        {"functions": {"predict": {"minscale": "0"}}},
        {"functions": {"predict": {"minScale": 0}}},
        {"h2o": {"heapPercent": 75}},
        {"h2o": {"resources": {"limits": {"memory": "lots"}}}},
        {"redis": {"image": {"pullPolicy": "Sometimes"}}},
        {"pgbouncer": {"poolMode": "transactions"}},
        {"postgresql": {"auth": {"existingSecrets": "x"}}},
        {"functions": {"containerSecurityContext": {"runAsNonRoot": False}}},
        {"images": {"functions": {"digest": "latest"}}},
        {"mage": {"projectPath": "../etc"}},
    ],
)
def test_schema_rejects_typos_and_unsafe_values(chart, bad):
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(bad)


def _leaf_paths(node, prefix=""):
    free_form = {"resources", "commonLabels", "commonAnnotations", "annotations", "nodeSelector", "affinity"}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in free_form:
            yield from _leaf_paths(value, path + ".")
        else:
            yield path


def test_every_value_is_documented_and_typed(chart):
    text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param ([\w.]+) \S", text, re.M))
    defaults = yaml.safe_load(text)
    leaves = set(_leaf_paths(defaults))
    assert leaves - documented == set(), "undocumented values"
    assert documented - leaves == set(), "documented values that do not exist"
    chart.validate_schema(defaults)  # additionalProperties: false everywhere, so every key is typed
    readme = (CHART / "README.md").read_text()
    assert not [p for p in documented if f"| `{p}` |" not in readme], "README parameters are stale"


def test_generated_schema_and_readme_are_up_to_date(tmp_path):
    import shutil

    copy = tmp_path / "converge"
    shutil.copytree(CHART, copy)
    subprocess.run([sys.executable, str(copy / "hack" / "generate.py")], check=True, timeout=60)
    for name in ("values.schema.json", "README.md"):
        assert (copy / name).read_text() == (CHART / name).read_text(), f"{name} is stale: run hack/generate.py"


def test_each_template_file_holds_one_kind():
    for template in (CHART / "templates").rglob("*.yaml"):
        kinds = set(re.findall(r"^kind: (\w+)", template.read_text(), re.M))
        assert len(kinds) <= 1, f"{template.relative_to(CHART)} holds {sorted(kinds)}"


def test_every_documented_value_carries_its_description_in_the_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    text = (CHART / "values.yaml").read_text()
    documented = dict(re.findall(r"^\s*## @param ([\w.]+) (.*)$", text, re.M))
    assert len(documented) > 200
    for path, description in documented.items():
        node = schema
        for part in path.split("."):
            node = node["properties"][part]
        assert node.get("description") == description, path


def test_heap_above_70_percent_cannot_render():
    with pytest.raises(helm.HelmError, match="heapPercent"):
        render({"h2o": {"heapPercent": 71}})


def test_every_broken_combination_of_values_is_named_at_once():
    """One validateValues: leaving out the external services' addresses lists each one."""
    with pytest.raises(helm.HelmError) as refused:
        render({"postgresql": {"enabled": False}, "redis": {"enabled": False}, "minio": {"enabled": False}})
    message = str(refused.value)
    for value in ("externalDatabase.host", "externalDatabase.existingSecret", "migrations.existingSecret",
                  "externalRedis.host", "externalRedis.existingSecret", "externalS3.endpoint",
                  "externalS3.existingSecret"):
        assert value in message, value


_EXTERNAL_DB = {k: VALUE_SETS["external"][k] for k in ("postgresql", "externalDatabase", "migrations")}


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({**_EXTERNAL_DB, "migrations": {"existingSecret": ""}}, ["migrations.existingSecret"]),
        ({"redis": {"enabled": False}, "externalRedis": {"host": "cache.internal"}}, ["externalRedis.existingSecret"]),
        ({"h2o": {"enabled": False}}, ["externalH2o.url", "h2o.enabled", "mage.enabled"]),
        ({"mage": {"ingress": {"enabled": True, "tlsSecretName": ""}}}, ["mage.ingress.tlsSecretName", "mage.ingress.enabled"]),
        ({"functions": {"domainMapping": {"enabled": True, "host": ""}}}, ["functions.domainMapping.host", "functions.domainMapping.enabled"]),
        ({"eventing": {"oidc": {"enabled": True, "jwksUrl": ""}}}, ["eventing.oidc.jwksUrl", "eventing.oidc.jwksConfigMap"]),
    ],
)
def test_a_bad_combination_of_values_fails_naming_the_values(bad, named):
    with pytest.raises(helm.HelmError, match="VALUES VALIDATION") as refused:
        render(bad)
    message = str(refused.value)
    assert [value for value in named if value not in message] == []
    reported = message.split("VALUES VALIDATION:")[1].strip().splitlines()
    assert len(reported) == 1, f"only the broken combination is reported: {reported}"


# --- Schemas of the rendered objects -----------------------------------------------------------


@pytest.mark.parametrize("name", SETS)
def test_core_kinds_validate_against_kubernetes_1_32(rendered, name):
    import kubernetes_validate

    for doc in rendered[name].docs:
        if doc["apiVersion"].split("/")[0].endswith("knative.dev"):
            continue
        kubernetes_validate.validate(doc, "1.32.0", strict=True)


def _knative_model(doc: dict):
    from cloudcoil.models.knative_eventing.eventing import v1 as eventing_v1
    from cloudcoil.models.knative_serving.serving import v1 as serving_v1
    from cloudcoil.models.knative_serving.serving import v1beta1 as serving_v1beta1

    models = {
        ("serving.knative.dev/v1", "Service"): serving_v1.Service,
        ("serving.knative.dev/v1beta1", "DomainMapping"): serving_v1beta1.DomainMapping,
        ("eventing.knative.dev/v1", "Broker"): eventing_v1.Broker,
        ("eventing.knative.dev/v1", "Trigger"): eventing_v1.Trigger,
    }
    return models[(doc["apiVersion"], doc["kind"])]


def _drop_empty(value):
    if isinstance(value, dict):
        return {k: _drop_empty(v) for k, v in value.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def _diff(a, b, path=""):
    """Paths where two JSON trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in a.keys() | b.keys() for p in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b)) for p in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.parametrize("name", SETS)
def test_knative_kinds_match_the_knative_api_types(rendered, name):
    """Parse with the Knative API types (cloudcoil models generated from the CRDs) and require a
    lossless round trip: a misspelt or unknown field would be dropped and show up as a diff."""
    docs = [d for d in rendered[name].docs if d["apiVersion"].split("/")[0].endswith("knative.dev")]
    for doc in docs:
        # strict: no coercion, so "1" stays a quantity string as the API server sees it.
        model = _knative_model(doc).model_validate(doc, strict=True)
        dumped = json.loads(model.model_dump_json(by_alias=True, exclude_none=True, exclude_unset=True))
        lost = _diff(_drop_empty(dumped), _drop_empty(json.loads(json.dumps(doc))))
        assert not lost, f"{doc['kind']}/{doc['metadata']['name']}: {lost}"


# --- Functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SETS)
def test_three_functions_share_one_image_and_scale_to_zero(rendered, name):
    r = rendered[name]
    services = {d["metadata"]["name"]: d for d in ksvcs(r)}
    assert set(services) == {f"{FULL}-{t}" for t in (*FUNCTIONS, "predict-grpc")}
    images = {function_container(r, "predict-grpc")["image"]}
    for target in FUNCTIONS:
        svc = services[f"{FULL}-{target}"]
        ann = svc["spec"]["template"]["metadata"]["annotations"]
        assert ann["autoscaling.knative.dev/min-scale"] == "0"
        for key in ("target", "scale-down-delay", "initial-scale", "max-scale"):
            assert ann[f"autoscaling.knative.dev/{key}"], key
        container = function_container(r, target)
        images.add(container["image"])
        assert env_of(container)["FUNCTION_TARGET"]["value"] == target
        assert container["ports"] == [{"name": "http1", "containerPort": 8080}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    assert len(images) == 1


@pytest.mark.parametrize("name", SETS)
def test_predict_grpc_is_predict_over_h2c_with_predicts_credentials(rendered, name):
    """Knative routes one port per Service; a port named h2c carries HTTP/2 cleartext, which gRPC
    needs. The gRPC Service runs predict's code as predict's roles: same env but the target."""
    r = rendered[name]
    grpc, rest = function_container(r, "predict-grpc"), function_container(r, "predict")
    assert grpc["ports"] == [{"name": "h2c", "containerPort": 8080}]
    assert grpc["readinessProbe"]["grpc"] == {"port": 8080}
    assert "httpGet" not in grpc["livenessProbe"]
    env, rest_env = env_of(grpc), env_of(rest)
    assert env.pop("FUNCTION_TARGET")["value"] == "predict-grpc"
    rest_env.pop("FUNCTION_TARGET")
    assert env == rest_env
    assert grpc["securityContext"] == rest["securityContext"]


@pytest.mark.parametrize("scorer", ["native", "genmodel"])
def test_the_scorer_value_picks_the_image_and_tells_training(scorer):
    r = render({"functions": {"scorer": scorer}})
    images = {"native": "ghcr.io/converge-ml/converge-functions:0.1.0",
              "genmodel": "ghcr.io/converge-ml/converge-functions:0.1.0-genmodel"}
    for target in (*FUNCTIONS, "predict-grpc"):
        container = function_container(r, target)
        env = env_of(container)
        assert container["image"] == images[scorer], target
        assert env["CONVERGE_SCORER_BACKEND"]["value"] == {"native": "native", "genmodel": "auto"}[scorer]
        assert env["CONVERGE_SERVING_SCORER"]["value"] == scorer
    mage = [c for name, _, spec in pod_specs(r) if "mage" in name for c in spec["containers"]]
    assert mage and all(env_of(c)["CONVERGE_SERVING_SCORER"]["value"] == scorer for c in mage)


def test_predict_grpc_can_be_left_out():
    r = render({"functions": {"predictGrpc": {"enabled": False}}})
    assert f"{FULL}-predict-grpc" not in {d["metadata"]["name"] for d in ksvcs(r)}
    assert f"{FULL}-predict" in {d["metadata"]["name"] for d in ksvcs(r)}


@pytest.mark.parametrize("name", SETS)
def test_functions_get_every_setting_and_secrets_only_by_reference(rendered, name):
    r = rendered[name]
    for target in FUNCTIONS:
        env_list = function_container(r, target)["env"]
        env = env_of(function_container(r, target))
        s3 = SECRET_ENV if target != "ingest" else set()  # ingest never touches the object store
        assert FUNCTION_ENV - SECRET_ENV | s3 <= set(env)
        assert not (SECRET_ENV - s3) & set(env), target
        for var in s3 | ROLE_CREDENTIALS[target]:
            assert "secretKeyRef" in env[var]["valueFrom"], var
        assert set(env) & CREDENTIALS == ROLE_CREDENTIALS[target], target
        # Least privilege: predict and reload read artifacts with the read-only identity;
        # predict and ingest log in to the database as their own roles.
        if s3:
            key = env["CONVERGE_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["key"]
            assert key == "reader-access-key", (target, key)
        user = re.match(r"postgresql://([^:]+):", env["CONVERGE_DATABASE_URL"]["value"]).group(1)
        password_key = env["CONVERGE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
        expected = {"predict": ("converge_predict", "predict-password"),
                    "ingest": ("converge_ingest", "ingest-password")}.get(target, ("converge", "password"))  # fmt: skip
        assert (user, password_key) == expected, target
        # URLs embed passwords only through $(VAR) of a secretKeyRef defined *earlier*.
        order = [e["name"] for e in env_list]
        for var in ("CONVERGE_DATABASE_URL", "CONVERGE_REDIS_URL"):
            refs = re.findall(r"\$\((\w+)\)", env[var]["value"])
            assert refs, f"{var} carries no password reference"
            for ref in refs:
                assert "secretKeyRef" in env[ref]["valueFrom"]
                assert order.index(ref) < order.index(var)


@pytest.mark.parametrize("name", SETS)
def test_every_secret_reference_resolves(rendered, name):
    r = rendered[name]
    values = VALUE_SETS[name]
    chart_secrets = {d["metadata"]["name"]: set(d["data"]) for d in r.kind("Secret")}
    external = {
        v.get("existingSecret")
        for v in (
            values.get("externalDatabase", {}),
            values.get("externalRedis", {}),
            values.get("externalS3", {}),
            values.get("auth", {}),
            values.get("migrations", {}),
        )
    } - {None, ""}
    for pod_name, _, spec in pod_specs(r):
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if not ref:
                    continue
                if ref["name"] in chart_secrets:
                    assert ref["key"] in chart_secrets[ref["name"]], (pod_name, ref)
                else:
                    assert ref["name"] in external, (pod_name, ref)


@pytest.mark.parametrize("name", SETS)
def test_endpoints_in_env_point_at_rendered_services(rendered, name):
    r = rendered[name]
    env = env_of(function_container(r, "predict"))
    services = core_services(r)
    suffix = f".{NAMESPACE}.svc.cluster.local"

    def check(url: str, default_port: int):
        parts = urlsplit(url.replace("$(", "").replace(")", ""))
        host = parts.hostname
        if not host.endswith(suffix):
            return host  # external
        svc = services[host.removesuffix(suffix)]
        assert (parts.port or default_port) in {p["port"] for p in svc["spec"]["ports"]}, url
        return host

    db_host = check(env["CONVERGE_DATABASE_URL"]["value"], 5432)
    check(env["CONVERGE_REDIS_URL"]["value"], 6379)
    check(env["CONVERGE_S3_ENDPOINT_URL"]["value"], 80)
    h2o_in_release = VALUE_SETS[name].get("h2o", {}).get("enabled", True)
    if h2o_in_release or VALUE_SETS[name].get("externalH2o", {}).get("url"):
        check(env["CONVERGE_H2O_URL"]["value"], 54321)
    else:
        assert "CONVERGE_H2O_URL" not in env
    if VALUE_SETS[name].get("postgresql", {}).get("enabled", True):
        assert db_host.startswith(f"{FULL}-pgbouncer."), "functions must go through PgBouncer"
    broker = env["CONVERGE_BROKER_URL"]["value"]
    assert broker.endswith(f"/{NAMESPACE}/{FULL}-broker")


# --- Eventing ----------------------------------------------------------------------------------


def test_triggers_route_event_types_to_their_functions_with_dead_letter(rendered):
    r = rendered["defaults"]
    assert r.names("Broker") == {f"{FULL}-broker", f"{FULL}-dead-letter"}
    routes = {}
    for trig in r.kind("Trigger"):
        spec = trig["spec"]
        assert spec["broker"] == f"{FULL}-broker"
        routes[spec["filter"]["attributes"]["type"]] = spec["subscriber"]["ref"]["name"]
        delivery = spec["delivery"]
        assert delivery["deadLetterSink"]["ref"]["name"] == f"{FULL}-dead-letter"
        assert delivery["retry"] >= 1 and delivery["backoffPolicy"] == "exponential"
        assert delivery["backoffDelay"].startswith("PT")
        assert spec["subscriber"]["uri"] == "/events"  # the one route that accepts events
    assert routes == {"features.ingest": f"{FULL}-ingest", "model.published": f"{FULL}-reload",
                      "rollout.decided": f"{FULL}-reload"}
    assert set(routes.values()) <= {d["metadata"]["name"] for d in ksvcs(r)}


# --- H2O ---------------------------------------------------------------------------------------


def _h2o_heap_module():
    import h2o_heap

    return h2o_heap


@pytest.mark.parametrize("name", ["defaults", "h2o3"])
def test_h2o_cluster_forms_through_headless_dns_and_waits_for_consensus(rendered, name):
    r = rendered[name]
    replicas = VALUE_SETS[name].get("h2o", {}).get("replicas", 1)
    sts = r.get("StatefulSet", f"{FULL}-h2o")
    headless = r.get("Service", f"{FULL}-h2o-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert sts["spec"]["replicas"] == replicas and sts["spec"]["podManagementPolicy"] == "Parallel"
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    env = env_of(c)
    assert env["H2O_KUBERNETES_SERVICE_DNS"]["value"] == f"{FULL}-h2o-headless.{NAMESPACE}.svc.cluster.local"
    assert env["H2O_NODE_EXPECTED_COUNT"]["value"] == str(replicas)
    assert c["readinessProbe"]["exec"]["command"][-1].endswith("h2o_ready.py")
    # Readiness also asks H2O's Kubernetes API whether this node leads: the client Service
    # (not headless, ready pods only) then reaches the leader alone, as H2O's guide prescribes.
    port = env["H2O_K8S_API_PORT"]["value"]
    assert env["H2O_LEADER_URL"]["value"] == f"http://127.0.0.1:{port}"
    assert {"name": "k8s-api", "containerPort": int(port)} in c["ports"]
    client = r.get("Service", f"{FULL}-h2o")
    assert client["spec"].get("clusterIP") != "None" and not client["spec"].get("publishNotReadyAddresses")
    assert c["livenessProbe"]
    pdb = r.get("PodDisruptionBudget", f"{FULL}-h2o")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    # The scripts the pods run are the ones tests/deploy tests.
    cm = r.get("ConfigMap", f"{FULL}-h2o-scripts")
    for fname in ("h2o_heap.py", "h2o_ready.py"):
        assert cm["data"][fname].strip() == (CHART / "files" / fname).read_text().strip()


@pytest.mark.parametrize("name", ["defaults", "h2o3"])
def test_h2o_heap_is_at_most_70_percent_of_the_memory_limit(rendered, name):
    h2o_heap = _h2o_heap_module()
    sts = rendered[name].get("StatefulSet", f"{FULL}-h2o")
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    env = env_of(c)
    limit = c["resources"]["limits"]["memory"]
    limit_mib = int(limit.removesuffix("Gi")) * 1024
    field = env["CONTAINER_MEMORY_LIMIT_MIB"]["valueFrom"]["resourceFieldRef"]
    assert field == {"containerName": "h2o", "resource": "limits.memory", "divisor": "1Mi"}
    percent = int(env["H2O_HEAP_PERCENT"]["value"])
    heap = h2o_heap.heap_mib(limit_mib, None, percent)
    assert heap <= 0.70 * limit_mib
    template_heap = int(sts["spec"]["template"]["metadata"]["annotations"]["converge.io/h2o-heap-mib"])
    assert template_heap == heap, "template and entrypoint disagree on the heap"


# --- Security ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SETS)
def test_every_container_runs_locked_down(rendered, name):
    for pod_name, _, spec in pod_specs(rendered[name]):
        assert spec.get("automountServiceAccountToken") is False, pod_name
        pod_sc = spec.get("securityContext", {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            sc = c.get("securityContext", {})
            where = f"{pod_name}/{c['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile")
            assert seccomp == {"type": "RuntimeDefault"}, where
            assert c["resources"]["limits"]["memory"] and c["resources"]["limits"]["cpu"], where
            for e in c.get("env", []):
                if re.search(r"(PASSWORD|SECRET|TOKEN|ACCESS_KEY|SECRET_KEY|CLI_AUTH)$", e["name"]):
                    assert "valueFrom" in e, f"{where}: {e['name']} is a literal"


@pytest.mark.parametrize("name", SETS)
def test_images_are_pinned(rendered, name):
    for pod_name, _, spec in pod_specs(rendered[name]):
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            image = c["image"]
            if "@sha256:" in image:
                continue
            tag = image.rsplit(":", 1)[-1]
            assert ":" in image and tag not in {"latest", "stable", ""}, f"{pod_name}: {image}"
            assert re.search(r"\d", tag), f"{pod_name}: {image} has no version in its tag"


def test_mage_ingress_requires_tls(rendered):
    (ing,) = rendered["h2o3"].kind("Ingress")
    assert ing["spec"]["tls"][0]["hosts"] == [ing["spec"]["rules"][0]["host"]]
    (dm,) = rendered["h2o3"].kind("DomainMapping")
    assert dm["spec"]["tls"]["secretName"]


# --- NetworkPolicies ---------------------------------------------------------------------------


def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] != "In" or labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def _ports(rule: dict) -> set[int] | None:
    return None if "ports" not in rule else {p["port"] for p in rule["ports"]}


def allowed(r: Rendered, src: str, dst: str, port: int) -> bool:
    """Would the policies let a `src` pod open a TCP connection to a `dst` pod on `port`?"""
    labels = {c: {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": c} for c in (src, dst)}
    policies = [p["spec"] for p in r.kind("NetworkPolicy")]

    def peer_ok(rules, other):
        for rule in rules or []:
            peers = rule.get("to") or rule.get("from") or []
            ports = _ports(rule)
            if ports is not None and port not in ports:
                continue
            if any("podSelector" in p and "namespaceSelector" not in p and _selects(p["podSelector"], labels[other]) for p in peers):
                return True
        return False

    out = [p for p in policies if _selects(p["podSelector"], labels[src]) and "Egress" in p["policyTypes"]]
    inn = [p for p in policies if _selects(p["podSelector"], labels[dst]) and "Ingress" in p["policyTypes"]]
    egress_ok = not out or any(peer_ok(p.get("egress"), dst) for p in out)
    ingress_ok = not inn or any(peer_ok(p.get("ingress"), src) for p in inn)
    return egress_ok and ingress_ok


DESIGN_FLOWS = [
    ("predict", "pgbouncer", 6432),
    ("ingest", "pgbouncer", 6432),
    ("reload", "pgbouncer", 6432),
    ("predict", "redis", 6379),
    ("predict-grpc", "pgbouncer", 6432),
    ("predict-grpc", "redis", 6379),
    ("predict-grpc", "minio", 9000),
    ("reload", "redis", 6379),
    ("reload", "minio", 9000),
    ("pgbouncer", "postgresql", 5432),
    ("mage-scheduler", "h2o", 54321),
    ("mage-webserver", "h2o", 54321),
    ("mage-scheduler", "minio", 9000),
    ("mage-scheduler", "pgbouncer", 6432),
    ("mage-scheduler", "postgresql", 5432),
    ("h2o", "h2o", 54322),
    ("minio-bucket", "minio", 9000),
]
FORBIDDEN_FLOWS = [
    ("predict", "postgresql", 5432),  # around PgBouncer
    ("predict", "h2o", 54321),  # scoring needs no cluster
    ("ingest", "mage-webserver", 6789),
    ("redis", "postgresql", 5432),
    ("h2o", "minio", 9000),
    ("minio", "redis", 6379),
    ("pgbouncer", "redis", 6379),
    ("predict", "pgbouncer", 5432),  # right peer, wrong port
]


def test_network_policies_allow_exactly_the_design_flows(rendered):
    r = rendered["defaults"]
    deny = r.get("NetworkPolicy", f"{FULL}-default-deny")
    assert deny["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": RELEASE}}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny["spec"]
    for flow in DESIGN_FLOWS:
        assert allowed(r, *flow), f"blocked: {flow}"
    for flow in FORBIDDEN_FLOWS:
        assert not allowed(r, *flow), f"open: {flow}"


@pytest.mark.parametrize("name", SETS)
def test_every_pod_has_a_specific_network_policy(rendered, name):
    r = rendered[name]
    specific = [p["spec"]["podSelector"] for p in r.kind("NetworkPolicy") if not p["metadata"]["name"].endswith("default-deny")]
    for pod_name, meta, _ in pod_specs(r):
        assert any(_selects(sel, meta["labels"]) for sel in specific), pod_name


def test_external_services_are_reachable_only_through_listed_cidrs(rendered):
    r = rendered["external"]
    cidrs = VALUE_SETS["external"]["networkPolicy"]["externalEgressCidrs"]
    functions = r.get("NetworkPolicy", f"{FULL}-functions")
    blocks = [p["ipBlock"]["cidr"] for rule in functions["spec"]["egress"] for p in rule.get("to", []) if "ipBlock" in p]
    assert blocks == cidrs and all(ipaddress.ip_network(b) for b in blocks)


# --- Switches ----------------------------------------------------------------------------------


def test_each_component_switches_off():
    base = render({})
    for key, marker in [
        ("h2o", "h2o"),
        ("mage", "mage"),
        ("redis", "redis"),
        ("minio", "minio"),
        ("pgbouncer", "pgbouncer"),
    ]:
        values = {key: {"enabled": False}}
        if key == "h2o":
            values["externalH2o"] = {"url": "http://h2o.example:54321"}
        if key in ("redis", "minio"):
            values.update({k: v for k, v in VALUE_SETS["external"].items() if k.startswith("external")})
        off = render(values)
        gone = {(d["kind"], d["metadata"]["name"]) for d in base.docs} - {(d["kind"], d["metadata"]["name"]) for d in off.docs}
        assert any(marker in n for _, n in gone), key
        assert not any(f"-{marker}" in d["metadata"]["name"] and d["kind"] in WORKLOAD_KINDS for d in off.docs), key
    no_events = render({"eventing": {"enabled": False}})
    assert not no_events.kind("Trigger") and not no_events.kind("Broker")


def test_functions_only_renders_no_other_workload(rendered):
    r = rendered["functions-only"]
    # The migration Job stays: the functions need the schema wherever the database is.
    others = [d["metadata"]["name"] for d in r.docs if d["kind"] in WORKLOAD_KINDS]
    assert others == [f"{FULL}-migrations"]
    assert {d["metadata"]["name"] for d in r.kind("Secret")} == {f"{FULL}-admin"}
    env = env_of(function_container(r, "predict"))
    assert "pooler.db.example.internal:6432" in env["CONVERGE_DATABASE_URL"]["value"]
    assert env["CONVERGE_REDIS_URL"]["value"].startswith("rediss://")
    assert env["CONVERGE_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-keys"


def test_notes_tell_the_user_what_to_do_next(rendered):
    notes = rendered["defaults"].notes
    for needle in ("helm test", "kubectl get ksvc", "/admin/reload-model", "features.ingest", "heap"):
        assert needle in notes, needle
    assert "WARNING" not in notes
    blocked = render({**VALUE_SETS["external"], "networkPolicy": {"externalEgressCidrs": []}}).notes
    assert "externalEgressCidrs is empty" in blocked


# --- checkov -----------------------------------------------------------------------------------


def _revision_pods(r: Rendered) -> list[dict]:
    """checkov has no Knative checks: scan each revision template as the Pod it becomes."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{d['metadata']['name']}-revision",
                "namespace": d["metadata"]["namespace"],
                "labels": d["spec"]["template"]["metadata"]["labels"],
                "annotations": d["metadata"].get("annotations", {}),
            },
            "spec": d["spec"]["template"]["spec"],
        }
        for d in ksvcs(r)
    ]


@pytest.mark.parametrize("name", SETS)
def test_checkov_finds_nothing_and_every_skip_has_a_reason(rendered, name, tmp_path):
    checkov = checkov_binary()
    if checkov is None:
        pytest.skip("checkov not installed (create .venv-checkov: see deploy/Taskfile.deploy.yml)")
    r = rendered[name]
    for i, doc in enumerate(r.docs + _revision_pods(r)):
        (tmp_path / f"{i:03d}-{doc['kind']}.yaml").write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        [checkov, "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download", "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": str(Path(checkov).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path), "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for rep in reports for c in rep["results"]["failed_checks"]]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= len(r.docs) // 2
    assert not failed, failed
    for doc in r.docs:
        for key, value in doc["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 20, value


@pytest.mark.parametrize("name", ["defaults", "h2o3"])
def test_oidc_settings_reach_only_the_event_receivers(rendered, name):
    """Knative Eventing OIDC (h2o3 enables it with a mounted key set): ingest and reload get the
    audience, issuer, subjects and key set; predict, which takes no write events, gets none."""
    oidc = VALUE_SETS[name].get("eventing", {}).get("oidc", {})
    for target in FUNCTIONS:
        container = function_container(rendered[name], target)
        env = env_of(container)
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        receives = oidc.get("enabled", False) and target in ("ingest", "reload")
        assert ("CONVERGE_EVENT_OIDC_AUDIENCE" in env) == receives, target
        assert ("/etc/converge/oidc" in mounts) == receives, target
        if receives:
            default = f"{FULL}-{target}"
            assert env["CONVERGE_EVENT_OIDC_AUDIENCE"]["value"] == oidc["audiences"].get(target, default)
            assert json.loads(env["CONVERGE_EVENT_OIDC_SUBJECTS"]["value"]) == oidc["subjects"]
            assert env["CONVERGE_EVENT_OIDC_ISSUER"]["value"] == oidc["issuer"]
            assert env["CONVERGE_EVENT_OIDC_JWKS_URL"]["value"] == "file:///etc/converge/oidc/jwks.json"
            ksvc = next(d for d in ksvcs(rendered[name]) if d["metadata"]["name"] == f"{FULL}-{target}")
            volumes = {v["name"]: v for v in ksvc["spec"]["template"]["spec"]["volumes"]}
            assert volumes["oidc-jwks"]["configMap"]["name"] == oidc["jwksConfigMap"]
