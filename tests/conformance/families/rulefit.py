"""RuleFit: rules read off small trees plus the linear terms, combined by a GLM; PredictCsv prints
the GLM's classic columns."""

from case import Case

_R = "H2ORuleFitEstimator"

CASES = [
    Case(name="rulefit_binomial_rules_and_linear", estimator=_R,
         params={"min_rule_length": 1, "max_rule_length": 3, "max_num_rules": 20, "seed": 1},
         dataset="mixed", y="y_binomial"),
    Case(name="rulefit_regression_rules", estimator=_R,
         params={"model_type": "rules", "min_rule_length": 1, "max_rule_length": 2,
                 "max_num_rules": 15, "seed": 2},
         dataset="mixed", y="y_regression"),
    Case(name="rulefit_multinomial_linear", estimator=_R,
         params={"model_type": "rules_and_linear", "min_rule_length": 1, "max_rule_length": 2,
                 "max_num_rules": 10, "seed": 3}, dataset="mixed", y="y_multinomial"),
    Case(name="rulefit_regression_linear_only", estimator=_R,
         params={"model_type": "linear", "seed": 4}, dataset="mixed", y="y_regression"),
]
