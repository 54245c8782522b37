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


DATASETS = {"mixed": mixed}
