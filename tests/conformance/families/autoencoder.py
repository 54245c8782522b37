"""DeepLearning autoencoders (AutoEncoder): PredictCsv prints the reconstruction, one column per
level (``reconstr_<col>.<level>``, ``reconstr_<col>.missing(NA)``) and per number."""

from case import Case

_DL = "H2ODeepLearningEstimator"

CASES = [
    Case(name="deeplearning_autoencoder", estimator=_DL,
         params={"autoencoder": True, "hidden": [4], "epochs": 3, "reproducible": True, "seed": 1},
         dataset="mixed", y=None),
    Case(name="deeplearning_autoencoder_tanh_dropout", estimator=_DL,
         params={"autoencoder": True, "hidden": [5, 2, 5], "activation": "TanhWithDropout",
                 "hidden_dropout_ratios": [0.1, 0.2, 0.1], "use_all_factor_levels": False,
                 "epochs": 3, "reproducible": True, "seed": 1}, dataset="mixed", y=None),
    Case(name="deeplearning_autoencoder_unstandardized", estimator=_DL,
         params={"autoencoder": True, "hidden": [3], "standardize": False, "epochs": 2,
                 "reproducible": True, "seed": 1}, dataset="mixed", y=None),
]
