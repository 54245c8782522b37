"""TargetEncoder: each encoded column's (blended) target mean per level, missing and unseen levels
taking the NA level's encoding; genmodel's API answers (PredictCsv cannot print the category).
Noise only applies when H2O transforms its training frame, never in the MOJO."""

from case import Case

_T = "H2OTargetEncoderEstimator"

CASES = [
    Case(name="target_encoder_binomial_blended", estimator=_T,
         params={"blending": True, "inflection_point": 3, "smoothing": 2, "noise": 0.01,
                 "seed": 1}, dataset="mixed", y="y_binomial", x=["c1", "c2"]),
    Case(name="target_encoder_multinomial", estimator=_T,
         params={"blending": False, "seed": 2}, dataset="mixed", y="y_multinomial",
         x=["c1", "c2"]),
    Case(name="target_encoder_regression_interaction", estimator=_T,
         params={"blending": True, "columns_to_encode": [["c1", "c2"], ["c2"]], "seed": 3},
         dataset="mixed", y="y_regression", x=["c1", "c2"]),
]
