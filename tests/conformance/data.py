"""Small seeded data sets for the conformance corpus: a training frame and a scoring input.

Scoring inputs hold what a served model meets: missing values, levels never seen in training,
numbers far outside the training range, and rows with every cell missing.
Cells are written as text, as ``PredictCsv`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Dataset:
    train: pd.DataFrame
    #: the scoring input, every cell as text ("" for missing)
    score: pd.DataFrame
    features: list[str]
    #: H2O column types for the categorical columns (and categorical responses)
    column_types: dict[str, str]


def _mixed_features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    df = pd.DataFrame({
        "x1": rng.normal(size=n),
        "x2": rng.uniform(-3, 3, n),
        "c1": rng.choice(["a", "b", "c"], n),
        "x3": rng.exponential(size=n),
        "c2": rng.choice(["u", "v", "w", "z"], n),
    })
    df.loc[rng.random(n) < 0.05, "x1"] = np.nan
    df.loc[rng.random(n) < 0.05, "c1"] = None
    return df


def _score_cells(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Rows like the training rows plus missing cells, unseen levels and out-of-range numbers;
    the last rows are all missing, or missing but for an unseen level."""
    df = _mixed_features(rng, n)
    cells = pd.DataFrame({c: [("" if pd.isna(v) else repr(float(v)) if c.startswith("x") else str(v))
                              for v in df[c]] for c in df.columns})
    for c in df.columns:
        hit = rng.random(n)
        cells.loc[hit < 0.08, c] = ""
        if c.startswith("c"):
            cells.loc[(hit >= 0.08) & (hit < 0.13), c] = "never-seen"
        else:
            wild = (hit >= 0.08) & (hit < 0.14)
            cells.loc[wild, c] = rng.choice(["1e6", "-250.5", "-1e5", "37.25"],
                                            int(wild.sum()))
    extra = pd.DataFrame([{c: "" for c in df.columns}, {**{c: "" for c in df.columns}, "c1": "zz"}])
    return pd.concat([cells, extra], ignore_index=True)


def mixed(seed: int = 7, n: int = 300) -> Dataset:
    """Three numbers and two categoricals; binomial, multinomial and regression responses."""
    rng = np.random.default_rng(seed)
    train = _mixed_features(rng, n)
    signal = train["x2"].fillna(0) + (train["c1"] == "a") - 0.3 * train["x3"]
    train["y_binomial"] = np.where(signal + rng.normal(0, 0.5, n) > 0.3, "yes", "no")
    train["y_multinomial"] = np.select([signal > 1, signal < -1], ["high", "low"], "mid")
    train["y_regression"] = 2 * signal + rng.normal(0, 0.5, n)
    return Dataset(
        train=train,
        score=_score_cells(rng, 150),
        features=["x1", "x2", "c1", "x3", "c2"],
        column_types={"c1": "enum", "c2": "enum", "y_binomial": "enum", "y_multinomial": "enum"},
    )


def glm(seed: int = 23, n: int = 400) -> Dataset:
    """The mixed inputs with a response for every GLM family: real, positive, count, binary,
    nominal and ordered classes."""
    rng = np.random.default_rng(seed)
    train = _mixed_features(rng, n)
    signal = 0.5 * train["x2"].fillna(0) + 0.8 * (train["c1"] == "a") - 0.3 * train["x3"]
    train["y_regression"] = 2 * signal + rng.normal(0, 0.5, n)
    train["y_positive"] = np.exp(0.3 * signal) * rng.gamma(4.0, 0.25, n)
    train["y_count"] = rng.poisson(np.exp(0.4 * signal + 0.5))
    train["y_binomial"] = np.where(signal + rng.normal(0, 0.5, n) > 0.3, "yes", "no")
    train["y_01"] = (train["y_binomial"] == "yes").astype(float)
    train["y_fraction"] = 1 / (1 + np.exp(-signal - rng.normal(0, 0.3, n)))
    train["y_multinomial"] = np.select([signal > 1, signal < -1], ["high", "low"], "mid")
    latent = signal + rng.logistic(0, 0.6, n)
    train["y_ordinal"] = np.select([latent < -0.8, latent < 0.4, latent < 1.4], ["a_low", "b_mid", "c_high"], "d_top")
    return Dataset(
        train=train,
        score=_score_cells(rng, 150),
        features=["x1", "x2", "c1", "x3", "c2"],
        column_types={"c1": "enum", "c2": "enum", "y_binomial": "enum", "y_multinomial": "enum",
                      "y_ordinal": "enum"},
    )


def many_levels(seed: int = 23, n: int = 300) -> Dataset:
    """The mixed features and ``c3``, a categorical with 14 levels of uneven frequency: more
    than the 10 that ``categorical_encoding="enum_limited"`` keeps, so the rarer ones become
    ``other``."""
    rng = np.random.default_rng(seed)
    levels = [f"k{i:02d}" for i in range(14)]
    weights = np.linspace(3, 1, len(levels))
    train = _mixed_features(rng, n).assign(c3=rng.choice(levels, n, p=weights / weights.sum()))
    signal = (train["x2"].fillna(0) + (train["c1"] == "a") - 0.3 * train["x3"]
              + 0.8 * train["c3"].isin(levels[::3]))
    train["y_binomial"] = np.where(signal + rng.normal(0, 0.5, n) > 0.3, "yes", "no")
    train["y_multinomial"] = np.select([signal > 1, signal < -1], ["high", "low"], "mid")
    train["y_regression"] = 2 * signal + rng.normal(0, 0.5, n)
    score = _mixed_features(rng, 150).assign(c3=rng.choice(levels, 150))
    cells = _score_cells(rng, 0)  # only the two all-missing rows, for their layout
    rows = pd.DataFrame({c: [("" if pd.isna(v) else repr(float(v)) if c.startswith("x") else str(v))
                             for v in score[c]] for c in score.columns})
    hit = rng.random(len(rows))
    rows.loc[hit < 0.08, "c3"] = ""
    rows.loc[(hit >= 0.08) & (hit < 0.13), "c3"] = "never-seen"
    rows.loc[(hit >= 0.13) & (hit < 0.16), "c1"] = "never-seen"
    return Dataset(
        train=train,
        score=pd.concat([rows, cells.assign(c3="")], ignore_index=True),
        features=["x1", "x2", "c1", "x3", "c2", "c3"],
        column_types={"c1": "enum", "c2": "enum", "c3": "enum", "y_binomial": "enum",
                      "y_multinomial": "enum"},
    )


def survival(seed: int = 11, n: int = 300) -> Dataset:
    """The mixed features with a follow-up interval (``start``, ``stop``) and an ``event`` flag,
    for CoxPH (hazard rising with x2 and level "a" of c1)."""
    rng = np.random.default_rng(seed)
    train = _mixed_features(rng, n)
    hazard = np.exp(0.5 * train["x2"].fillna(0) + 0.7 * (train["c1"] == "a") - 0.2 * train["x3"])
    train["start"] = np.round(rng.uniform(0, 2, n), 2)
    train["stop"] = train["start"] + np.round(rng.exponential(1 / hazard) + 0.01, 3)
    train["event"] = (rng.random(n) < 0.8).astype(int)
    return Dataset(train=train, score=_score_cells(rng, 150),
                   features=["x1", "x2", "c1", "x3", "c2"],
                   column_types={"c1": "enum", "c2": "enum"})


def survival_offset(seed: int = 19, n: int = 300) -> Dataset:
    """``survival`` with a known log exposure per row (an offset; never missing, as PredictCsv
    parses it as a number)."""
    base = survival(seed, n)
    rng = np.random.default_rng(seed + 1)
    train = base.train.assign(log_exposure=np.round(rng.uniform(-0.5, 0.5, n), 3))
    score = base.score.assign(
        log_exposure=[repr(float(v)) for v in np.round(rng.uniform(-1, 1, len(base.score)), 3)])
    return Dataset(train=train, score=score, features=[*base.features, "log_exposure"],
                   column_types=base.column_types)


def uplift(seed: int = 13, n: int = 400) -> Dataset:
    """The mixed features with a ``treatment`` flag whose effect on ``y_binomial`` depends on x2,
    for uplift DRF."""
    rng = np.random.default_rng(seed)
    train = _mixed_features(rng, n)
    treated = rng.random(n) < 0.5
    train["treatment"] = np.where(treated, "treatment", "control")
    signal = 0.5 * train["x2"].fillna(0) + treated * (train["x2"].fillna(0) > 0) - 0.2 * train["x3"]
    train["y_binomial"] = np.where(signal + rng.normal(0, 0.5, n) > 0.2, "yes", "no")
    return Dataset(train=train, score=_score_cells(rng, 150),
                   features=["x1", "x2", "c1", "x3", "c2"],
                   column_types={"c1": "enum", "c2": "enum", "treatment": "enum",
                                 "y_binomial": "enum"})


def sentences(seed: int = 17, n: int = 250) -> Dataset:
    """One ``words`` string column, sentences separated by a missing word, for Word2Vec; the
    scoring input adds words never seen in training and missing cells."""
    rng = np.random.default_rng(seed)
    vocabulary = ["red", "green", "blue", "cat", "dog", "bird", "run", "jump", "fast", "slow",
                  "big", "small"]
    words: list[str | None] = []
    for _ in range(n):
        words += list(rng.choice(vocabulary, int(rng.integers(3, 8)))) + [None]
    score = list(rng.choice(vocabulary, 30)) + ["zebra", "", "Cat", "", "never-seen"]
    return Dataset(train=pd.DataFrame({"words": words}),
                   score=pd.DataFrame({"words": score}),
                   features=["words"], column_types={"words": "string"})


DATASETS = {"mixed": mixed, "glm": glm, "many_levels": many_levels, "survival": survival,
            "survival_offset": survival_offset, "uplift": uplift, "sentences": sentences}
