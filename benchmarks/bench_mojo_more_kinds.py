"""MOJO scoring of CoxPH, RuleFit, Uplift DRF and TargetEncoder models, and of a GBM trained on
Eigen-encoded categoricals: the native scorer against pure-Java h2o-genmodel, one model of each
kind, in the same run (the harness and the method of
``bench_mojo_unsupervised.py``: corpus models and rows, batch of dict records and one record).

Word2Vec is not here: genmodel answers it with ``predictWord2Vec`` only, which the Java harness's
``predictRaw`` (``score0``) does not reach.

Usage: python benchmarks/bench_mojo_more_kinds.py [--rows 20000] [--rounds 3] [--no-write]
Results replace the section named below in BENCHMARKS.md.
"""

from __future__ import annotations


from _kinds import main

SECTION = "## MOJO scoring: CoxPH, RuleFit, Uplift DRF, TargetEncoder, an encoded GBM, GLM ordinal, Isotonic, gblinear"
SET = [
    ("CoxPH (start and stop columns)", "coxph_start_stop", 1.0),
    ("RuleFit (binomial, rules and linear terms)", "rulefit_binomial_rules_and_linear", 1.0),
    ("Uplift DRF (5 tree pairs)", "uplift_drf_kl", 1.0),
    ("TargetEncoder (binomial, blended)", "target_encoder_binomial_blended", 1.0),
    ("GBM on Eigen-encoded categoricals (binomial, 6 trees)", "gbm_eigen_binomial", 1.0),
    ("GLM ordinal (4 classes)", "glm_ordinal", 1.0),
    ("Isotonic regression", "isotonic_regression", 1.0),
    ("XGBoost gblinear (multinomial)", "xgboost_gblinear_multinomial", 1.0),
]
NOTES = ("Notes: CoxPH, TargetEncoder and RuleFit's rules run in plain Python for one row and "
         "in NumPy for a batch, RuleFit then through its GLM's scorer; Uplift DRF walks its trees "
         "in the compiled tree walker, as does the Eigen GBM: its records are read by the compiled "
         "record reader, each level to a row of its column's table of projections, one table "
         "lookup per column for a batch. Batch rates include encoding the dict records.")

if __name__ == "__main__":
    main(SET, SECTION, "bench_mojo_more_kinds.py", NOTES, __doc__)
