"""GLM over every family and link H2O exports, ordinal included (cumulative logits, one block of
coefficients per class). Rows outside the training range overflow log links to Infinity in
genmodel: the mixed data's score rows hold such numbers."""

from case import Case

_FAMILIES = [
    ("gaussian_identity", "gaussian", "identity", "y_regression"),
    ("gaussian_log", "gaussian", "log", "y_positive"),
    ("gaussian_inverse", "gaussian", "inverse", "y_positive"),
    ("binomial_logit", "binomial", "logit", "y_binomial"),
    ("quasibinomial", "quasibinomial", "logit", "y_01"),
    ("fractionalbinomial", "fractionalbinomial", "logit", "y_fraction"),
    ("poisson_log", "poisson", "log", "y_count"),
    ("poisson_identity", "poisson", "identity", "y_count"),
    ("gamma_inverse", "gamma", "inverse", "y_positive"),
    ("gamma_log", "gamma", "log", "y_positive"),
    ("gamma_identity", "gamma", "identity", "y_positive"),
    ("tweedie", "tweedie", "tweedie", "y_positive"),
    ("negativebinomial", "negativebinomial", "log", "y_count"),
    ("multinomial", "multinomial", "family_default", "y_multinomial"),
    ("ordinal", "ordinal", "ologit", "y_ordinal"),
]

CASES = [
    Case(name=f"glm_{name}", estimator="H2OGeneralizedLinearEstimator",
         params={"family": family, "link": link, "seed": 1, "lambda_": 0.001,
                 **({"tweedie_variance_power": 1.5, "tweedie_link_power": 0} if family == "tweedie" else {}),
                 **({"theta": 0.5} if family == "negativebinomial" else {})},
         dataset="glm", y=y)
    for name, family, link, y in _FAMILIES
] + [
    Case(name="glm_ordinal_mean_imputation", estimator="H2OGeneralizedLinearEstimator",
         params={"family": "ordinal", "missing_values_handling": "MeanImputation", "seed": 1},
         dataset="glm", y="y_ordinal"),
]
