"""MOJO scoring of GAMs (cubic regression, thin plate, I- and M-splines), DeepLearning with Maxout
units, GLRM with a constraint regularizer and a MOJO pipeline: the native scorer against
pure-Java h2o-genmodel, one model of each kind, in the same run (the harness of ``bench_mojo_more_kinds.py``: corpus models and rows, batch of dict
records and one record).

Usage: python benchmarks/bench_mojo_new_kinds.py [--rows 20000] [--rounds 3] [--no-write]
Results replace the section named below in BENCHMARKS.md.
"""

from __future__ import annotations

from _kinds import main

SECTION = "## MOJO scoring: GAM, DeepLearning Maxout, GLRM OneSparse, a MOJO pipeline"
SET = [
    ("GAM multinomial (cubic regression + thin plate on 2 columns)", "gam_multinomial_cs_tp", 1.0),
    ("GAM gaussian (cubic regression + I-splines)", "gam_gaussian_cs_is", 1.0),
    ("GAM poisson (M-splines)", "gam_poisson_ms", 1.0),
    ("DeepLearning Maxout (binomial, 6+5 units)", "deeplearning_maxout_binomial", 1.0),
    ("GLRM OneSparse (k=3)", "glrm_one_sparse", 0.1),
    ("MOJO pipeline (GBM over a KMeans cluster and a GLM probability)",
     "mojo_pipeline_gbm_kmeans_glm", 1.0),
]
NOTES = ("Notes: the GAM builds its spline bases in NumPy for a batch and in plain Python for "
         "one row, each sum in genmodel's order; Maxout's layers run in the compiled kernels "
         "(plain channel sums, then each unit's largest channel), its softmax layer in the "
         "compiled dense layer. GLRM runs genmodel's per-row descent in plain Python (OneSparse's prox "
         "draws ties from each row's Random: no batch path); the pipeline scores its sub-models "
         "and main model each as a batch. Batch rates include encoding the dict records.")

if __name__ == "__main__":
    main(SET, SECTION, "bench_mojo_new_kinds.py", NOTES, __doc__)
