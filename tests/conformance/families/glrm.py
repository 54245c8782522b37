"""GLRM (DimReduction): PredictCsv prints the row's factor Arch1..Archk, found by genmodel's
gradient descent from a start seeded by the model seed plus a row counter (answers depend on the
rows before them, so the input is scored in file order)."""

from case import Case

_G = "H2OGeneralizedLowRankEstimator"

CASES = [
    Case(name="glrm_quadratic", estimator=_G,
         params={"k": 3, "transform": "STANDARDIZE", "max_iterations": 20, "seed": 1},
         dataset="mixed", y=None),
    Case(name="glrm_quadratic_regularized", estimator=_G,
         params={"k": 2, "regularization_x": "Quadratic", "gamma_x": 0.5, "regularization_y": "L1",
                 "gamma_y": 0.1, "max_iterations": 10, "seed": 3}, dataset="mixed", y=None),
    Case(name="glrm_l1_absolute_ordinal", estimator=_G,
         params={"k": 3, "regularization_x": "L1", "gamma_x": 0.2, "loss": "Absolute",
                 "multi_loss": "Ordinal", "transform": "NORMALIZE", "max_iterations": 10, "seed": 4},
         dataset="mixed", y=None),
    Case(name="glrm_nonnegative_huber", estimator=_G,
         params={"k": 2, "regularization_x": "NonNegative", "gamma_x": 1.0, "loss": "Huber",
                 "max_iterations": 10, "seed": 5}, dataset="mixed", y=None),
    Case(name="glrm_l2_demeaned", estimator=_G,
         params={"k": 4, "regularization_x": "L2", "gamma_x": 0.3, "transform": "DEMEAN",
                 "max_iterations": 10, "seed": 6}, dataset="mixed", y=None),
    # the regularizers that pick one factor (ties broken by the row's own Random) or project onto
    # the simplex (genmodel's insertion sort)
    Case(name="glrm_one_sparse", estimator=_G,
         params={"k": 3, "regularization_x": "OneSparse", "gamma_x": 0.5, "max_iterations": 10,
                 "seed": 7}, dataset="mixed", y=None),
    Case(name="glrm_unit_one_sparse", estimator=_G,
         params={"k": 3, "regularization_x": "UnitOneSparse", "gamma_x": 0.5, "max_iterations": 10,
                 "seed": 8}, dataset="mixed", y=None),
    Case(name="glrm_simplex", estimator=_G,
         params={"k": 3, "regularization_x": "Simplex", "gamma_x": 0.5, "max_iterations": 10,
                 "seed": 9}, dataset="mixed", y=None),
    # genmodel reads the loss by name only: its period (and so its frequency) stays 0
    Case(name="glrm_periodic", estimator=_G,
         params={"k": 2, "loss_by_col": ["Periodic"], "loss_by_col_idx": [1], "period": 6,
                 "max_iterations": 10, "seed": 10}, dataset="mixed", y=None),
    # PredictCsv --glrmReconstruct: the row rebuilt from its factor (Model.reconstruction)
    Case(name="glrm_reconstruct_ordinal", estimator=_G,
         params={"k": 3, "loss": "Huber", "multi_loss": "Ordinal", "transform": "STANDARDIZE",
                 "max_iterations": 10, "seed": 11}, dataset="mixed", y=None,
         predict_csv_args=("--glrmReconstruct",)),
    Case(name="glrm_reconstruct_original_scale", estimator=_G,
         params={"k": 2, "transform": "NORMALIZE", "impute_original": True, "max_iterations": 10,
                 "seed": 12}, dataset="mixed", y=None, predict_csv_args=("--glrmReconstruct",)),
]
