"""XGBoost with ``booster="gblinear"``: one linear model per output group over the one-hot
encoded inputs, summed in float32 with missing values skipped (xgboost-predictor's GBLinear)."""

from case import Case

CASES = [
    Case(name=f"xgboost_gblinear_{kind}", estimator="H2OXGBoostEstimator",
         params={"booster": "gblinear", "ntrees": 6, "seed": 1, **extra},
         dataset="mixed", y=f"y_{kind}")
    for kind, extra in (("regression", {}), ("binomial", {"reg_lambda": 0.5}),
                        ("multinomial", {"reg_alpha": 0.1}))
]
