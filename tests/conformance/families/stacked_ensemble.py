"""StackedEnsembles over every kind of base model H2O stacks (GBM, DRF, XRT, GLM, XGBoost,
DeepLearning), base models reading different columns, with each metalearner algorithm and the
Logit metalearner transform."""

from __future__ import annotations

from functools import partial

from case import Case

_FEATURES = ["x1", "x2", "c1", "x3", "c2"]


def _stack(h2o, frame, y: str, metalearner: dict):
    """Base models with the cross-validation predictions a StackedEnsemble learns from."""
    est = h2o.estimators
    cv = {"nfolds": 3, "keep_cross_validation_predictions": True, "fold_assignment": "Modulo", "seed": 1}
    base = [
        est.H2OGradientBoostingEstimator(ntrees=4, max_depth=3, **cv),
        est.H2ORandomForestEstimator(ntrees=4, max_depth=5, **cv),
        est.H2ORandomForestEstimator(ntrees=3, histogram_type="Random", **cv),  # XRT
        est.H2OGeneralizedLinearEstimator(**cv),
        est.H2OXGBoostEstimator(ntrees=4, max_depth=3, **cv),
        est.H2ODeepLearningEstimator(hidden=[3], epochs=2, reproducible=True, **cv),
    ]
    x_of = {1: ["x1", "c1", "x3"]}  # the DRF reads a subset, in another order than the frame
    for i, model in enumerate(base):
        model.train(x=x_of.get(i, _FEATURES), y=y, training_frame=frame)
    se = est.H2OStackedEnsembleEstimator(base_models=base, seed=1, **metalearner)
    se.train(x=_FEATURES, y=y, training_frame=frame)
    return se


def _case(name: str, y: str, **metalearner) -> Case:
    return Case(name=name, estimator="H2OStackedEnsembleEstimator", params=metalearner,
                dataset="mixed", y=y, train=partial(_stack, y=y, metalearner=metalearner))


CASES = [
    _case("stackedensemble_binomial_logit", "y_binomial", metalearner_transform="Logit"),
    _case("stackedensemble_binomial_gbm", "y_binomial", metalearner_algorithm="gbm",
          metalearner_params={"ntrees": 5, "seed": 1}),
    _case("stackedensemble_multinomial_logit", "y_multinomial", metalearner_transform="Logit"),
    _case("stackedensemble_multinomial_drf", "y_multinomial", metalearner_algorithm="drf",
          metalearner_params={"ntrees": 5, "seed": 1}),
    _case("stackedensemble_regression_glm", "y_regression"),
    _case("stackedensemble_regression_deeplearning", "y_regression",
          metalearner_algorithm="deeplearning",
          metalearner_params={"hidden": [2], "epochs": 2, "reproducible": True, "seed": 1}),
]
