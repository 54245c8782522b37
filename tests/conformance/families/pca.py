"""PCA (DimReduction): PredictCsv prints the components PC1..PCk; missing numbers give missing
components (the MOJO does not impute)."""

from case import Case

CASES = [
    Case(name="pca_standardized", estimator="H2OPrincipalComponentAnalysisEstimator",
         params={"k": 3, "transform": "STANDARDIZE", "seed": 1}, dataset="mixed", y=None),
    Case(name="pca_all_levels_normalized", estimator="H2OPrincipalComponentAnalysisEstimator",
         params={"k": 4, "transform": "NORMALIZE", "use_all_factor_levels": True, "pca_method": "Power",
                 "seed": 1}, dataset="mixed", y=None),
    Case(name="pca_randomized_untransformed", estimator="H2OPrincipalComponentAnalysisEstimator",
         params={"k": 2, "transform": "NONE", "pca_method": "Randomized", "seed": 1},
         dataset="mixed", y=None),
]
