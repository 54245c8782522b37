"""The chart's Mage parts: triggers from values, written over the project's own triggers.yaml and
parsed by Mage's own trigger code, and the owner account from a Secret."""

from __future__ import annotations

import json
import subprocess

import pytest
from deploy_support import RELEASE, helm, render, yaml

from converge.training import runner

FULL_NAME = f"{RELEASE}-converge"
TRIGGERS = f"{FULL_NAME}-mage-triggers"


def _triggers(values: dict) -> dict[str, dict[str, dict]]:
    """pipeline -> trigger name -> trigger, from the rendered ConfigMap."""
    data = render(values).get("ConfigMap", TRIGGERS)["data"]
    return {
        name.removesuffix(".yaml"): {t["name"]: t for t in yaml.safe_load(text)["triggers"]}
        for name, text in data.items()
    }


def test_default_triggers_retrain_daily_on_request_and_per_region_and_publish():
    triggers = _triggers({})
    walk = triggers["walk_forward"]
    assert walk["retrain-on-schedule"]["schedule_interval"] == "@daily"
    assert walk["retrain-on-schedule"]["status"] == "active"
    assert walk["retrain-on-request"]["schedule_type"] == "api"
    assert walk["retrain-on-request"]["status"] == "active"
    regional = triggers["walk_forward_regional"]["regional-retrain-on-schedule"]
    assert regional["schedule_interval"] == "0 3 * * *" and regional["status"] == "active"
    assert regional["variables"] == {"publish": True, "segment": "region"}
    for trigger in [*walk.values(), regional]:
        assert trigger["variables"]["publish"] is True  # explicit in every trigger
        assert trigger["last_enabled_at"]  # else Mage rewrites the file on every start


def test_trigger_values_change_schedule_publishing_and_variables():
    triggers = _triggers(
        {
            "mage": {
                "triggers": {
                    "walkForward": {
                        "schedule": "0 */6 * * *",
                        "api": False,
                        "publish": False,
                        "variables": {"n_splits": 3, "estimator": "drf"},
                    },
                    "regional": {"schedule": "", "segment": "store_type"},
                }
            }
        }
    )
    walk = triggers["walk_forward"]
    assert walk["retrain-on-schedule"]["schedule_interval"] == "0 */6 * * *"
    assert walk["retrain-on-request"]["status"] == "inactive"
    assert walk["retrain-on-schedule"]["variables"] == {
        "publish": False,
        "n_splits": 3,
        "estimator": "drf",
    }
    regional = triggers["walk_forward_regional"]["regional-retrain-on-schedule"]
    # Off, but still listed: an upgrade must switch off the trigger Mage's database holds.
    assert regional["status"] == "inactive"
    assert regional["variables"]["segment"] == "store_type"


@pytest.mark.parametrize("schedule", ["daily", "@yearly-ish", "* * *"])
def test_schema_rejects_a_schedule_that_is_neither_cron_nor_preset(chart, schedule):
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"mage": {"triggers": {"walkForward": {"schedule": schedule}}}})


def test_rendered_triggers_parse_with_mages_own_trigger_code(tmp_path):
    data = render({}).get("ConfigMap", TRIGGERS)["data"]
    code = (
        "import json, sys\n"
        "from mage_ai.data_preparation.models.triggers import load_trigger_configs\n"
        "out = {}\n"
        "for name, text in json.load(sys.stdin).items():\n"
        "    ts = load_trigger_configs(text, pipeline_uuid=name, repo_path='/p', raise_exception=True)\n"
        "    out[name] = [[t.name, t.schedule_type.value, t.status.value,\n"
        "                  t.has_valid_schedule_interval] for t in ts]\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(runner.training_python()), "-c", code],
        input=json.dumps({k.removesuffix(".yaml"): v for k, v in data.items()}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    )
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    assert parsed == {
        "walk_forward": [
            ["retrain-on-schedule", "time", "active", True],
            ["retrain-on-request", "api", "active", True],
        ],
        "walk_forward_regional": [["regional-retrain-on-schedule", "time", "active", True]],
    }


def test_mage_pods_copy_the_triggers_over_the_project_and_take_the_owner_from_a_secret():
    r = render({"mage": {"auth": {"existingSecret": "mage-owner"}}})
    for role in ("webserver", "scheduler"):
        pod = r.get("Deployment", f"{FULL_NAME}-mage-{role}")["spec"]["template"]
        (init,) = pod["spec"]["initContainers"]
        script = " ".join(init["command"] + init.get("args", []))
        for pipeline in ("walk_forward", "walk_forward_regional"):
            assert "/triggers/$p.yaml" in script and pipeline in script
        assert {"name": "triggers", "mountPath": "/triggers", "readOnly": True} in init["volumeMounts"]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["triggers"]["configMap"]["name"] == TRIGGERS
        assert pod["metadata"]["annotations"]["checksum/triggers"]
        (mage,) = pod["spec"]["containers"]
        env = {e["name"]: e for e in mage["env"]}
        assert env["REQUIRE_USER_AUTHENTICATION"]["value"] == "1"
        ref = env["DEFAULT_OWNER_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "mage-owner", "key": "owner-password"}
    assert f"{FULL_NAME}-mage" not in r.names("Secret")  # the existing Secret is used, none made


def test_notes_name_each_trigger_and_its_schedule():
    notes = render({"mage": {"triggers": {"regional": {"schedule": ""}}}}).notes
    assert "retrain-on-schedule: @daily" in notes
    assert "retrain-on-request (API, URL in the UI): on" in notes
    assert "regional-retrain-on-schedule: off" in notes
