"""DeepLearning with Maxout units: each hidden unit the largest of its channels (each channel
its own weights and bias), with and without dropout's scaling, for every response kind."""

from case import Case


def _maxout(name: str, y: str, **params) -> Case:
    return Case(name=f"deeplearning_{name}", estimator="H2ODeepLearningEstimator",
                params={"activation": "Maxout", "hidden": [6, 5], "epochs": 5, "seed": 1,
                        "reproducible": True, **params},
                dataset="mixed", y=y)


CASES = [
    _maxout("maxout_binomial", "y_binomial"),
    _maxout("maxout_multinomial", "y_multinomial", hidden=[7]),
    _maxout("maxout_regression", "y_regression"),
    _maxout("maxout_dropout_regression", "y_regression", activation="MaxoutWithDropout",
            hidden_dropout_ratios=[0.2, 0.3]),
]
