"""MOJO scoring of anomaly-detection, clustering, dimension-reduction and autoencoder models (and
a StackedEnsemble over every base-model kind): the native scorer against pure-Java h2o-genmodel,
one model of each kind, in the same run.

The models and rows are the conformance corpus's (``tests/data/conformance/<case>/``: small MOJOs
trained by h2o 3.46.0.11 on generated data; inputs with missing values, unseen levels and
out-of-range numbers), the input rows repeated up to ``--rows``. Each round runs native, then
Java (``benchmarks/mojo_harness.java``, JIT-warm): a batch of dict records (native
``predict_records`` against ``EasyPredictModelWrapper``), then one record per call, each call
timed (medians). Medians over the rounds.

Usage: python benchmarks/bench_mojo_unsupervised.py [--rows 20000] [--rounds 3] [--no-write]
Results replace the section named below in BENCHMARKS.md.
"""

from __future__ import annotations

from _kinds import main

SECTION = "## MOJO scoring: anomaly detection, clustering, dimension reduction, autoencoders, ensembles"
#: (label, corpus case, share of --rows: GLRM runs an optimisation per row)
SET = [
    ("IsolationForest", "isolation_forest", 1.0),
    ("ExtendedIsolationForest", "extended_isolation_forest", 1.0),
    ("KMeans", "kmeans_standardized", 1.0),
    ("PCA", "pca_standardized", 1.0),
    ("GLRM", "glrm_quadratic", 0.1),
    ("DeepLearning autoencoder", "deeplearning_autoencoder", 1.0),
    ("StackedEnsemble (multinomial; GBM, DRF, XRT, GLM, XGBoost, DeepLearning; DRF metalearner)",
     "stackedensemble_multinomial_drf", 0.25),
]


NOTES = ("Notes: these corpus models are small (a few trees, a few hundred parameters), so one "
         "row costs little more than the call itself: native one-row times are mostly the "
         "Python call and the record's encoding (about 2 us), against a JIT-compiled Java "
         "call. IsolationForest walks its trees in the compiled tree walker; "
         "ExtendedIsolationForest, KMeans and PCA run in NumPy for batches and plain Python "
         "for one row; the autoencoder uses DeepLearning's compiled layers; GLRM runs "
         "genmodel's per-row gradient descent (up to 100 iterations of 10 step sizes) in the "
         "compiled kernel, row by row for batches too.")


if __name__ == "__main__":
    main(SET, SECTION, "bench_mojo_unsupervised.py", NOTES, __doc__)
