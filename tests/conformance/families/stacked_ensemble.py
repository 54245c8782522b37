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



def _stack_with(*make_bases):
    """An ensemble over the given base models (each ``make(estimators, cv) -> (model, x)``)."""
    def train(h2o, frame):
        est = h2o.estimators
        cv = {"nfolds": 3, "keep_cross_validation_predictions": True, "fold_assignment": "Modulo",
              "seed": 1}
        base = []
        for make in make_bases:
            model, x = make(est, cv)
            model.train(x=x, y="y_binomial", training_frame=frame)
            base.append(model)
        se = est.H2OStackedEnsembleEstimator(base_models=base, seed=1)
        se.train(x=_FEATURES, y="y_binomial", training_frame=frame)
        return se
    return train


def _maxout(est, cv):
    return est.H2ODeepLearningEstimator(hidden=[4], epochs=3, activation="Maxout",
                                        reproducible=True, **cv), _FEATURES


def _gbm(est, cv):
    return est.H2OGradientBoostingEstimator(ntrees=4, max_depth=3, **cv), _FEATURES


def _gam(est, cv):  # its spline columns are built from x2 at scoring time
    return est.H2OGeneralizedAdditiveEstimator(family="binomial", gam_columns=["x2"], bs=[0],
                                               num_knots=[5], **cv), ["x1", "c1", "x3", "c2"]


CASES += [
    Case(name="stackedensemble_binomial_maxout", estimator="H2OStackedEnsembleEstimator",
         dataset="mixed", y="y_binomial", train=_stack_with(_maxout, _gbm)),
    # genmodel cannot load an ensemble over a GAM: the record of its failure
    Case(name="stackedensemble_binomial_gam_maxout", estimator="H2OStackedEnsembleEstimator",
         dataset="mixed", y="y_binomial", train=_stack_with(_gam, _maxout, _gbm)),
]
