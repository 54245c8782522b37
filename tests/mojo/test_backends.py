"""Backend selection, errors and the no-pandas cold path."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from converge.mojo import (
    BackendUnavailableError,
    CorruptMojoError,
    InvalidInputError,
    MojoError,
    UnsupportedMojoError,
    load_mojo,
)


def test_auto_picks_native_for_supported_models(corpus_dir):
    m = load_mojo(corpus_dir / "gbm_variable_importance.zip")
    assert m.backend.name == "native"
    assert m.algorithm == "gbm" and m.category == "Binomial"
    assert m.classes == ["0", "1"] and m.output_names == ["predict", "p0", "p1"]
    assert m.feature_names == ["AGE", "RACE", "DPROS", "DCAPS", "PSA", "VOL", "GLEASON"]
    assert m.response_name == "CAPSULE"
    assert m.mojo_version == 1.4 and m.h2o_version.startswith("3.")
    assert m.offset_column is None


def test_metadata_of_xgboost_with_offset(corpus_dir):
    m = load_mojo(corpus_dir / "XGBoostWithOffset.zip")
    assert m.offset_column == "offset"
    assert m.feature_types == {"categorical": "enum", "numeric1": "numeric", "numeric2": "numeric"}
    assert m.classes is None and m.output_names == ["predict"]


def test_offset_argument_overrides_the_offset_column(corpus_dir):
    m = load_mojo(corpus_dir / "XGBoostWithOffset.zip")
    row = {"categorical": "A", "numeric1": 1.0, "numeric2": 2.0}
    a = m.predict_records([dict(row, offset=0.5)])[0]["predict"]
    b = m.predict_records([row], offset=[0.5])[0]["predict"]
    c = m.predict_records([row])[0]["predict"]
    assert a == b and a != c


def test_daimojo_backend_says_what_is_missing(corpus_dir):
    try:
        import daimojo  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match="daimojo"):
            load_mojo(corpus_dir / "glm_model.zip", backend="daimojo")
    else:  # installed: without a license it must still refuse clearly
        with pytest.raises((BackendUnavailableError, CorruptMojoError)):
            load_mojo(corpus_dir / "glm_model.zip", backend="daimojo")


def test_unknown_backend_name_is_rejected(corpus_dir):
    with pytest.raises(ValueError, match="backend"):
        load_mojo(corpus_dir / "glm_model.zip", backend="onnx")


def test_zip_slip_entries_are_rejected(tmp_path):
    p = tmp_path / "evil.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("model.ini", "[info]\nalgo = gbm\n")
        z.writestr("../../etc/passwd", "x")
    with pytest.raises(CorruptMojoError, match=r"\.\."):
        load_mojo(p)


def test_zip_bomb_is_rejected_before_inflating(tmp_path):
    p = tmp_path / "bomb.zip"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.ini", "[info]\nalgo = gbm\n")
        z.writestr("trees/t00_000.bin", b"\0" * (20 << 20))
    with pytest.raises(CorruptMojoError, match="zip bomb"):
        load_mojo(p)


def test_not_a_zip_and_missing_files_are_corrupt(tmp_path):
    p = tmp_path / "x.zip"
    p.write_bytes(b"not a zip at all")
    with pytest.raises(CorruptMojoError, match="not a zip"):
        load_mojo(p)
    with pytest.raises(CorruptMojoError, match="no such"):
        load_mojo(tmp_path / "absent.zip")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
        z.writestr("README", "hi")
    with pytest.raises(CorruptMojoError, match="model.ini"):
        load_mojo(tmp_path / "empty.zip")


def test_truncated_tree_is_corrupt_not_a_wrong_answer(corpus_dir, tmp_path):
    src = corpus_dir / "gbm_variable_importance.zip"
    out = tmp_path / "cut.zip"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "trees/t00_003.bin":
                data = data[: len(data) // 2]
            zout.writestr(info, data)
    with pytest.raises(CorruptMojoError, match="t00_003"):
        load_mojo(out, backend="native")


def test_unsupported_algorithm_falls_back_or_raises(corpus_dir, tmp_path):
    src = corpus_dir / "glm_model.zip"
    out = tmp_path / "naivebayes.zip"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "model.ini":
                data = data.replace(b"algo = glm", b"algo = naivebayes")
            zout.writestr(info, data)
    with pytest.raises(UnsupportedMojoError, match="naivebayes"):
        load_mojo(out, backend="native")
    assert issubclass(UnsupportedMojoError, MojoError)


def test_errors_name_the_file(corpus_dir, tmp_path):
    p = tmp_path / "broken.zip"
    p.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(CorruptMojoError) as e:
        load_mojo(p)
    assert str(p) in str(e.value)


def test_invalid_numbers_and_unknown_levels_can_be_strict(corpus_dir):
    strict = load_mojo(corpus_dir / "binomial.zip", unknown_levels="raise", invalid_numbers="raise")
    with pytest.raises(InvalidInputError, match="unknown level"):
        strict.predict_records([{"RACE": "zz"}])
    with pytest.raises(InvalidInputError, match="parse"):
        strict.predict_records([{"AGE": "old"}])
    lenient = load_mojo(corpus_dir / "binomial.zip")
    a = lenient.predict_records([{"RACE": "zz", "AGE": "old"}])
    b = lenient.predict_records([{}])
    assert a == b


# one row of each corpus model whose every part scores without NumPy (no XGBoost inside)
_ONE_ROW = {
    "binomial_titanic": {"sex": "female", "age": 30, "pclass": "1"},  # GBM, DRF, XRT, DL, GLM
    "gbm_variable_importance": {"AGE": 65, "RACE": "1", "PSA": 1.4, "GLEASON": 6},
    "multinomial": {},
    "glm_model": {},
    "regression": {},
}


@pytest.mark.parametrize("name", sorted(_ONE_ROW))
def test_one_row_is_scored_without_numpy_or_pandas(name, corpus_dir):
    """A cold process loads the model and answers one row importing neither NumPy nor pandas
    (nor the JVM bridge), and answers what the batch path answers."""
    from converge.mojo.native import _compiled

    if _compiled.kernels is None:
        pytest.skip("the compiled kernels are not built (no C compiler at install?)")
    path, row = corpus_dir / f"{name}.zip", _ONE_ROW[name]
    code = (
        "import sys, json\n"
        "from converge.mojo import load_mojo\n"
        f"out = load_mojo({str(path)!r}).predict_records([{row!r}])\n"
        "print(json.dumps({'modules': sorted({'numpy', 'pandas', 'jpype'} & set(sys.modules)),"
        " 'out': out}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    got = json.loads(res.stdout)
    assert got["modules"] == []
    model = load_mojo(path)
    batch = model._to_records(model.predict_raw([row]))[0]
    assert got["out"][0].keys() == batch.keys()
    for key, value in batch.items():
        if isinstance(value, str):
            assert got["out"][0][key] == value
        else:
            assert got["out"][0][key] == pytest.approx(value, rel=0, abs=1e-12)
