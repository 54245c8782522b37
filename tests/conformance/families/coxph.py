"""CoxPH: PredictCsv prints the linear predictor ``lp`` centred on the training means (per
stratum when stratified), with and without a start column."""

from case import Case

_C = "H2OCoxProportionalHazardsEstimator"

CASES = [
    Case(name="coxph_stop_only", estimator=_C, params={"stop_column": "stop"},
         dataset="survival", y="event"),
    Case(name="coxph_start_stop", estimator=_C,
         params={"start_column": "start", "stop_column": "stop", "ties": "breslow"},
         dataset="survival", y="event"),
    Case(name="coxph_stratified", estimator=_C,
         params={"start_column": "start", "stop_column": "stop", "stratify_by": ["c2"]},
         dataset="survival", y="event"),
    Case(name="coxph_interactions", estimator=_C,
         params={"stop_column": "stop", "interaction_pairs": [("c1", "c2"), ("c1", "x2"),
                                                              ("x1", "x3")]},
         dataset="survival", y="event"),
    Case(name="coxph_offset", estimator=_C,
         params={"stop_column": "stop", "offset_column": "log_exposure"},
         dataset="survival_offset", y="event"),
]
