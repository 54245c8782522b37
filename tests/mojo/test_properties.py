"""Property tests: for awkward inputs the native scorer and genmodel agree, or both refuse clearly.

genmodel here is the reference run directly (``converge.reference``: its own RowData and
EasyPredictModelWrapper, its own parsing and refusals), never converge's genmodel backend.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converge.mojo import InvalidInputError, MojoError, load_mojo
from converge.mojo._javafloat import parse_java_double
from converge.reference import GenmodelRefused, GenmodelReference

MODELS = ["gbm_variable_importance", "binomial_titanic", "xgboost", "glm_model",
          "XGBoostWithOffset", "multinomial", "regression"]
#: conformance-corpus models trained on encoded categoricals: genmodel encodes the original
#: columns first, with each encoder's own lookups (no "column.value" retry but EnumLimited's)
ENCODED = ["gbm_eigen_binomial", "gbm_enum_limited_multinomial", "gbm_one_hot_explicit_binomial",
           "gbm_binary_regression", "drf_label_encoder_binomial", "drf_enum_limited_regression",
           "deeplearning_eigen_regression", "deeplearning_binary_binomial", "gbm_eigen_offset"]
CONFORMANCE = Path(__file__).resolve().parents[1] / "data" / "conformance"
EXACT = {"glm_model", "regression", "xgboost", "XGBoostWithOffset"}
TOL = 1e-12
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def jvm():
    from converge.mojo.backends.genmodel import _jvm
    from converge.mojo.errors import BackendUnavailableError

    try:
        return _jvm()
    except BackendUnavailableError as e:
        pytest.skip(f"genmodel backend unavailable: {e}")


_pairs: dict[str, tuple] = {}


def _path(corpus_dir, name) -> Path:
    return CONFORMANCE / name / "model.zip" if name in ENCODED else corpus_dir / f"{name}.zip"


def _pair(corpus_dir, name):
    if name not in _pairs:
        path = _path(corpus_dir, name)
        _pairs[name] = (load_mojo(path, backend="native"), GenmodelReference(path))
    return _pairs[name]


def _thresholds(scorer) -> dict[int, list[float]]:
    """Numeric split points per feature, collected from the native trees (and sub-models)."""
    out: dict[int, list[float]] = {}
    subs = [(scorer, None)]
    if hasattr(scorer, "bases"):
        subs = [(s, m) for _i, s, m in scorer.bases]
    for s, mapping in subs:
        forest = getattr(s, "forest", None)
        if forest is None:
            continue
        nf = forest.nf
        w = forest.walkers
        for vc, thr, tbl in zip(w.view_col, w.thr, w.tbl_node):
            if tbl or not np.isfinite(thr) or vc >= 2 * nf:
                continue
            col = int(vc % nf)
            if mapping is not None:
                col = int(mapping[col])
            out.setdefault(col, []).append(float(thr))
    return out


def _model_thresholds(model) -> dict[int, list[float]]:
    """``_thresholds`` by the model's own features: an encoded model's trees split the encoded
    columns, where each number keeps one column (``slots``)."""
    backend = model.backend
    if not hasattr(backend, "inner"):
        return _thresholds(backend.scorer)
    encoded = _thresholds(backend.inner.scorer)
    return {i: encoded[start] for i, (start, _w) in enumerate(backend.slots)
            if backend.columns[i] is None and start in encoded}


_JAVA_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["1e3", "0x1.8p1", "1.5f", "2d", " 7 ", "\t3\n", "NaN", "-Infinity", "+.5",
                     "5.", ".", "1e", "--1", "infinity", "nan", "1_000", "\u0661", "0x10", "",
                     "1,5", "Infinityd", "0X1P-2D", "-0", "4.9e-324", "1e400"]),
    st.text(alphabet="0123456789.eE+-xXpPfFdD aN", max_size=8),
)


@given(s=_JAVA_NUMBERS)
@SETTINGS
def test_number_parsing_matches_java_parse_double(jvm, s):
    Double = jvm.JClass("java.lang.Double")
    try:
        want = float(Double.parseDouble(jvm.JString(s)))
    except jvm.JException:
        want = None
    try:
        got = parse_java_double(s)
    except ValueError:
        got = None
    if want is None or got is None:
        assert want is got, f"{s!r}: java={want!r} python={got!r}"
    elif math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want and math.copysign(1, got) == math.copysign(1, want), s


WRONG_TYPES = st.sampled_from([True, False, [1], {"a": 1}, b"x", object()])


def _value_strategy(model, idx: int, thresholds):
    name = model.feature_names[idx]
    dom = model.domains[name]
    if dom is None:
        near = st.nothing()
        if thresholds.get(idx):
            t = st.sampled_from(thresholds[idx])
            near = st.one_of(t, t.map(lambda v: np.nextafter(v, -np.inf)), t.map(repr),
                             t.map(lambda v: float(np.float32(v))))
        return st.one_of(
            near, st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-1000, 1000), _JAVA_NUMBERS, st.none(),
        )
    levels = st.sampled_from(dom) if dom else st.nothing()
    return st.one_of(
        levels, levels, st.text(max_size=5), st.just(""), st.none(),
        st.integers(-2, len(dom) + 2), st.just(math.nan),
        st.floats(0, len(dom)).map(math.floor).map(float), levels.map(lambda v: f"{name}.{v}"),
    )


@st.composite
def _records(draw, model, thresholds):
    rec = {}
    for i, name in enumerate(model.feature_names):
        if draw(st.booleans()) or i < 2:
            rec[name] = draw(_value_strategy(model, i, thresholds))
    if model.offset_column and draw(st.booleans()):
        rec[model.offset_column] = draw(st.floats(-3, 3))
    if draw(st.booleans()):
        rec["not_a_feature"] = draw(st.text(max_size=3))
    return rec


def _outcome(model, rows):
    try:
        return model.predict_raw(rows)
    except MojoError as e:
        return e


def _as_java_caller_sends(native, row: dict) -> dict:
    """The documented convenience of converge's API, spelled out for genmodel: an integral number
    for a categorical column means the level named by its decimal text (JSON has no ints)."""
    out = {}
    for k, v in row.items():
        integral = isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()
        out[k] = str(int(v)) if integral and native.domains.get(k) else v
    return out


def _reference_outcome(ref, native, rows):
    try:
        return ref.raw([_as_java_caller_sends(native, r) for r in rows])
    except GenmodelRefused as e:
        return e


@pytest.mark.parametrize("name", MODELS + ENCODED)
def test_native_equals_genmodel_on_awkward_rows(name, corpus_dir, jvm):
    native, ref = _pair(corpus_dir, name)
    thresholds = _model_thresholds(native)

    scored = []

    @given(rows=st.lists(_records(native, thresholds), min_size=1, max_size=4))
    @SETTINGS
    def check(rows):
        a = _outcome(native, rows)
        b = _reference_outcome(ref, native, rows)
        if isinstance(a, Exception) or isinstance(b, Exception):
            # e.g. DeepLearning on +/-inf: genmodel refuses a NaN probability, so must we
            assert isinstance(a, MojoError) and isinstance(b, GenmodelRefused), (a, b)
            return
        scored.append(len(rows))
        assert a.shape == b.shape
        if native.classes is not None:
            np.testing.assert_array_equal(a[:, 0], b[:, 0])
            a, b = a[:, 1:], b[:, 1:]
        if name in EXACT:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=TOL)

    check()
    assert len(scored) >= SETTINGS.max_examples // 3, "too few examples were scorable"


@pytest.mark.parametrize("name", MODELS + ENCODED)
def test_wrong_value_types_are_refused_by_both_backends(name, corpus_dir, jvm):
    native, ref = _pair(corpus_dir, name)

    @given(col=st.sampled_from(native.feature_names), bad=WRONG_TYPES)
    @SETTINGS
    def check(col, bad):
        with pytest.raises(InvalidInputError, match=col):
            native.predict_raw([{col: bad}])
        with pytest.raises(GenmodelRefused, match=col):
            ref.raw([{col: bad}])
        with pytest.raises(InvalidInputError, match=col):  # one record: the NumPy-free path
            native.predict_records([{col: bad}])

    check()


def test_fractional_number_for_a_categorical_is_refused_by_both(corpus_dir, jvm):
    native, ref = _pair(corpus_dir, "binomial_titanic")
    with pytest.raises(InvalidInputError, match="sex"):
        native.predict_raw([{"sex": 0.5}])
    with pytest.raises(GenmodelRefused, match="sex"):
        ref.raw([{"sex": 0.5}])
    # 1.0 is converge's spelling of the level "1"; genmodel takes only the text
    a, b = native.predict_raw([{"sex": 1.0}]), ref.raw([{"sex": "1"}])
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL)


@pytest.mark.parametrize("name", MODELS + ENCODED)
def test_batch_answers_equal_row_by_row_answers(name, corpus_dir):
    """Vectorised scoring never mixes rows: a batch equals its rows scored alone."""
    model = load_mojo(_path(corpus_dir, name), backend="native")
    thresholds = _model_thresholds(model)
    strict_ok = st.lists(_records(model, thresholds), min_size=2, max_size=12)

    @given(rows=strict_ok)
    @SETTINGS
    def check(rows):
        try:
            batch = model.predict_raw(rows)
        except InvalidInputError:
            return
        single = np.vstack([model.predict_raw([r]) for r in rows])
        np.testing.assert_array_equal(batch, single)

    check()


@pytest.mark.parametrize("name", [m for m in MODELS if "xgboost" not in m.lower()] + ["binomial"]
                         + ENCODED)
def test_one_row_path_equals_the_batch_path(name, corpus_dir):
    """The plain-Python one-row path answers what NumPy answers for the same row, and refuses
    what it refuses; only exp/log may differ in the last bits."""
    from converge.mojo.native import _compiled

    model = load_mojo(_path(corpus_dir, name), backend="native")
    if _compiled.kernels is None:
        pytest.skip("the compiled kernels are not built (no C compiler at install?)")
    assert model.backend.scorer.rows_without_numpy()
    thresholds = _model_thresholds(model)

    @given(row=_records(model, thresholds))
    @SETTINGS
    def check(row):
        batch = _outcome(model, [row])
        try:
            single = model.backend.preds_row(row)
        except MojoError as e:
            assert isinstance(batch, MojoError) and type(e) is type(batch), (e, batch)
            return
        assert not isinstance(batch, Exception), batch
        want = batch[0].tolist()
        assert len(single) == len(want)
        if model.classes is not None:
            assert single[0] == want[0]
            single, want = single[1:], want[1:]
        if name in EXACT:
            np.testing.assert_array_equal(single, want)  # NaN (inf - inf in a GLM) equals NaN
        else:
            np.testing.assert_allclose(single, want, rtol=0, atol=TOL)
        # the one-record call (one compiled call where the model has a plan): the same answer
        record, expected = model.predict_records([row])[0], model._to_records(batch)[0]
        assert set(record) == set(expected)
        if model.classes is not None:
            assert record["predict"] == expected["predict"]
        names = model.output_names[1:] or ["predict"]
        np.testing.assert_allclose([record[k] for k in names], [expected[k] for k in names],
                                   rtol=0, atol=0 if name in EXACT else TOL)

    check()


@pytest.mark.parametrize("name", ["gbm_variable_importance", "glm_model", "regression", "binomial"])
def test_binomial_and_regression_models_have_a_compiled_one_row_plan(name, corpus_dir):
    """Their one record is one compiled call (encode, every model, output dict), which the
    one-row test above checks against the batch path."""
    model = load_mojo(corpus_dir / f"{name}.zip", backend="native")
    assert model.backend._row_plan() is not None


@pytest.mark.parametrize("name", MODELS)
def test_encoded_matrix_scoring_agrees_with_genmodel_score0(name, corpus_dir, jvm):
    """Random level codes / NaN / inf straight into score0 (``predict_numpy``)."""
    native, ref = _pair(corpus_dir, name)
    doms = [native.domains[f] for f in native.feature_names]

    @given(data=st.data())
    @SETTINGS
    def check(data):
        n = data.draw(st.integers(1, 5))
        X = np.empty((n, len(doms)))
        for j, d in enumerate(doms):
            if d is None:
                col = st.floats(allow_nan=True, allow_infinity=True, width=64)
            else:
                col = st.one_of(st.integers(0, len(d) - 1).map(float), st.just(math.nan))
            X[:, j] = data.draw(st.lists(col, min_size=n, max_size=n))
        off = None
        if native.offset_column:
            off = np.asarray(data.draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n)))
        a = _outcome_np(native, X, off)
        try:
            b = ref.score0(X, off)
        except GenmodelRefused as e:
            b = e
        if isinstance(a, Exception) or isinstance(b, Exception):
            assert isinstance(a, MojoError) and isinstance(b, GenmodelRefused), (a, b)
            return
        if native.classes is not None:
            np.testing.assert_array_equal(a[:, 0], b[:, 0])
            a, b = a[:, 1:], b[:, 1:]
        if name in EXACT:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=TOL)

    check()


def _outcome_np(model, X, off):
    try:
        return model.predict_numpy(X, off)
    except MojoError as e:
        return e
