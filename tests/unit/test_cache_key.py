"""The cache key must be identical across processes and key orders, and differ when it should."""

import subprocess
import sys

from converge.cache import cache_key, canonical_json, features_digest


def test_key_ignores_key_order():
    a = {"AGE": 65.0, "RACE": "1", "PSA": 1.5}
    b = {"PSA": 1.5, "AGE": 65.0, "RACE": "1"}
    assert cache_key("demo", 3, a) == cache_key("demo", 3, b)


def test_key_names_model_and_version():
    f = {"x": 1.0}
    key = cache_key("demo", 7, f)
    assert key.startswith("converge:pred:demo:7:")
    assert key != cache_key("demo", 8, f)
    assert key != cache_key("other", 7, f)


def test_int_and_float_are_the_same_feature_value():
    assert features_digest({"x": 1}) == features_digest({"x": 1.0})
    assert features_digest({"x": True}) != features_digest({"x": 1.0})
    assert features_digest({"x": None}) != features_digest({"x": "None"})


def test_canonical_json_is_sorted_and_compact():
    assert canonical_json({"b": 1, "a": "z"}) == b'{"a":"z","b":1.0}'


def test_key_is_stable_across_processes():
    """hash() is salted per process; the digest must not be."""
    code = "from converge.cache import cache_key; print(cache_key('demo', 1, {'b': 2, 'a': 'x'}))"
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert keys == {cache_key("demo", 1, {"a": "x", "b": 2})}
