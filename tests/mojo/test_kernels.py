"""The compiled tree walker (over the MOJO's bytes) and the NumPy walkers (over decoded nodes)
give the same sums, bit for bit.

The conformance tests check the scorer (compiled walker included) against genmodel; this one pins
the NumPy fallback to it on inputs built to hit every kind of node: values on split points, NaN,
infinities, negative, fractional and out-of-domain category codes.
"""

from __future__ import annotations

import numpy as np
import pytest

from converge.mojo import MojoError, load_mojo
from converge.mojo.native import _compiled

TREE_MODELS = ["gbm_variable_importance", "binomial_titanic", "multinomial", "regression",
               "binomial", "mojo"]


def _forests(scorer):
    subs = [s for _i, s, _m in scorer.bases] if hasattr(scorer, "bases") else [scorer]
    return [s.forest for s in subs if getattr(s, "forest", None) is not None]


def _awkward_rows(forest, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows mixing each column's split points, category codes in and out of the domain, NaN
    and infinities."""
    X = np.empty((n, forest.nf))
    w = forest.walkers
    for j in range(forest.nf):
        splits = w.thr[(w.col == j) & np.isfinite(w.thr)]
        pool = np.concatenate([
            splits, np.nextafter(splits, -np.inf), rng.normal(0, 50, 20),
            np.arange(-3, 400, dtype=np.float64), [0.5, -0.5, 2.0**31, -(2.0**40)],
            [np.nan, np.inf, -np.inf],
        ])
        X[:, j] = rng.choice(pool, size=n)
    return X


@pytest.fixture(scope="module")
def kernel():
    if _compiled.kernels is None:
        pytest.skip("the compiled kernels are not built (no C compiler at install?)")
    return _compiled.kernels


@pytest.mark.parametrize("name", TREE_MODELS)
@pytest.mark.parametrize("n_rows", [1, 7, 3000])
@pytest.mark.parametrize("layout", ["bytes", "flat"])
def test_compiled_walker_matches_numpy_walkers(name, n_rows, layout, corpus_dir, kernel,
                                               monkeypatch):
    """Both compiled walkers: over the MOJO's bytes, and over the records decoded from them."""
    model = load_mojo(corpus_dir / f"{name}.zip", backend="native")
    forests = _forests(model.backend.scorer)
    assert forests, f"{name} has no trees"
    for forest in forests:
        if layout == "bytes":  # as when the records could not be built: rows walk the bytes
            forest.__dict__["flat"] = None
    rng = np.random.default_rng(7)
    for forest in forests:
        X = _awkward_rows(forest, n_rows, rng)
        compiled = forest.sums(X)
        reference = forest.numpy_sums(X)
        assert compiled.shape == reference.shape == (n_rows, forest.n_tpc)
        assert np.array_equal(compiled, reference), (
            f"{name}: rows differ: {np.flatnonzero((compiled != reference).any(axis=1))[:10]}"
        )
        for r in range(min(n_rows, 7)):  # the one-row path, on the same layout
            assert np.array_equal(forest.row_sums(X[r].tolist()), reference[r]), f"{name}: row {r}"


def test_compiled_walker_rejects_mismatched_arrays(corpus_dir, kernel):
    forest = _forests(load_mojo(corpus_dir / "gbm_variable_importance.zip").backend.scorer)[0]
    X = np.zeros((4, forest.nf))
    out = np.empty((3, forest.n_tpc))  # one row short
    with pytest.raises(ValueError, match="sizes do not match"):
        kernel.tree_walk(X, 4, forest.nf, forest.trees, forest.offsets, forest.cat_ub,
                         forest.flags, forest.n_tpc, forest.n_groups, out)


@pytest.mark.parametrize("name", ["binomial_titanic", "multinomial", "regression", "binomial",
                                  "xgboost", "XGBoostWithOffset"])
def test_whole_models_score_the_same_with_and_without_kernels(name, corpus_loader, kernel,
                                                              monkeypatch):
    """Every compiled path at once (trees, DeepLearning layers, code checks) on the corpus rows."""
    fixture = corpus_loader(name)
    model = load_mojo(fixture.zip_path, backend="native")
    records = fixture.records() * 3
    compiled = model.predict_raw(records)
    monkeypatch.setattr(_compiled, "kernels", None)
    reference = model.predict_raw(records)
    assert compiled.shape == reference.shape and compiled.shape[0] == len(records)
    assert np.array_equal(compiled, reference, equal_nan=True)


def test_bad_codes_are_refused_with_and_without_kernels(corpus_dir, kernel, monkeypatch):
    model = load_mojo(corpus_dir / "binomial_titanic.zip", backend="native")
    domains = model.domains
    cat, later = [i for i, n in enumerate(model.feature_names) if domains[n] is not None][:2]
    X = np.zeros((5, len(model.feature_names)))
    X[1, later] = -1.0  # out of the domain, in an earlier row but a later column
    X[3, cat] = 0.5  # not an integer level: the lowest bad column is the one named
    messages = []
    for k in (kernel, None):
        monkeypatch.setattr(_compiled, "kernels", k)
        with pytest.raises(MojoError, match=repr(model.feature_names[cat])) as info:
            model.predict_numpy(X)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_records_encode_the_same_with_and_without_kernels(corpus_dir, kernel, monkeypatch):
    """The compiled record encoder takes JSON types and leaves every other record to the full
    rules: the matrix is the column-wise encoder's, and a row that is not a dict is named."""
    model = load_mojo(corpus_dir / "binomial_titanic.zip", backend="native")
    schema = model.backend.schema
    cat = next(n for n in model.feature_names if model.domains[n])
    num = next(n for n in model.feature_names if not model.domains[n])
    level = model.domains[cat][0]
    records = [
        {cat: level, num: 1.5}, {num: 3}, {num: "2.5e1"}, {cat: "no such level"}, {},
        {cat: None, num: None}, {"ignored": object(), num: -0.0}, {7: "x", num: 2.0},
        {cat: level, num: 2**80}, {num: float("nan")}, {cat: 1.0},
    ] * 3
    compiled = schema.encode_records(records)[0]
    monkeypatch.setattr(_compiled, "kernels", None)
    reference = schema.encode_records(records)[0]
    assert np.array_equal(compiled, reference, equal_nan=True)
    assert np.array_equal(np.signbit(compiled), np.signbit(reference))
    monkeypatch.setattr(_compiled, "kernels", kernel)
    with pytest.raises(MojoError, match="row 4 is a list"):
        schema.encode_records([*records[:4], [1.0], {num: "bad"}])


def test_a_model_that_has_scored_pickles_and_scores_the_same(corpus_loader, kernel):
    """A parsed model goes to the serving process as a pickle: its compiled plan and node records
    stay behind and are built again there."""
    import pickle

    fixture = corpus_loader("binomial")
    model = load_mojo(fixture.zip_path, backend="native")
    records = fixture.records()[:20]
    first = [model.predict_records([r])[0] for r in records]
    assert model.backend._row_plan() is not None
    copy = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own object
    assert [copy.predict_records([r])[0] for r in records] == first
    assert np.array_equal(copy.predict_raw(records), model.predict_raw(records))


@pytest.mark.parametrize("name", ["deeplearning_maxout_binomial", "deeplearning_maxout_multinomial",
                                  "deeplearning_maxout_dropout_regression"])
def test_maxout_layers_score_the_same_with_and_without_kernels(name, kernel, monkeypatch):
    """The compiled Maxout layer and the NumPy one, bit for bit, on a batch (the one-row path,
    compiled layer and ``math.exp``, is held to genmodel by the conformance tests)."""
    import csv

    from converge.checkout import CONFORMANCE

    case = CONFORMANCE / name
    model = load_mojo(case / "model.zip", backend="native")
    with open(case / "input.csv", newline="", encoding="utf-8") as f:
        records = [{k: v for k, v in r.items() if v} for r in csv.DictReader(f)]
    compiled = model.predict_raw(records)
    monkeypatch.setattr(_compiled, "kernels", None)
    reference = model.predict_raw(records)
    assert np.array_equal(compiled, reference, equal_nan=True)


@pytest.mark.parametrize("name", ["glrm_quadratic", "glrm_quadratic_regularized",
                                  "glrm_l1_absolute_ordinal", "glrm_nonnegative_huber",
                                  "glrm_l2_demeaned"])
def test_glrm_rows_descend_the_same_with_and_without_kernels(name, kernel, monkeypatch):
    """GLRM's descent, compiled (rows and batches) and in plain Python or NumPy, bit for bit on
    the corpus rows (a fresh model each time: a row's start depends on the rows scored before)."""
    import csv

    from converge.checkout import CONFORMANCE

    case = CONFORMANCE / name
    with open(case / "input.csv", newline="", encoding="utf-8") as f:
        records = [{k: v for k, v in r.items() if v} for r in csv.DictReader(f)]

    def one_by_one():
        model = load_mojo(case / "model.zip", backend="native")
        return np.array([model.backend.preds_row(r) for r in records])

    def batch():  # more rows than the plain-Python batch takes: NumPy's descent without kernels
        return load_mojo(case / "model.zip", backend="native").predict_raw(records * 2)

    compiled, compiled_batch = one_by_one(), batch()
    monkeypatch.setattr(_compiled, "kernels", None)
    assert np.array_equal(compiled, one_by_one(), equal_nan=True)
    assert np.array_equal(compiled_batch, batch(), equal_nan=True)
