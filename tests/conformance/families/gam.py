"""GAM: a GLM over the predictors plus spline bases of the gam columns, built at scoring time from
the raw values (cubic regression ``cs``, thin plate ``tp``, I-splines ``is``, M-splines ``ms``).
The score rows put gam columns far outside the knots and leave them missing."""

from case import Case

_X = ["x1", "c1", "c2"]  # the predictors; x2 and x3 enter through their splines only


def _gam(name: str, family: str, y: str, gam_columns: list, bs: list[int], **params) -> Case:
    return Case(name=f"gam_{name}", estimator="H2OGeneralizedAdditiveEstimator",
                params={"family": family, "gam_columns": gam_columns, "bs": bs, "seed": 1,
                        "lambda_": 0.001, **params},
                dataset="glm", y=y, x=_X)


CASES = [
    _gam("gaussian_cs", "gaussian", "y_regression", ["x2"], [0], num_knots=[6]),
    _gam("binomial_cs_two", "binomial", "y_binomial", ["x2", "x3"], [0, 0], num_knots=[5, 4]),
    _gam("poisson_tp", "poisson", "y_count", [["x2", "x3"]], [1], num_knots=[8]),
    _gam("gaussian_tp_one", "gaussian", "y_regression", ["x2"], [1], num_knots=[6],
         standardize=True),
    _gam("gaussian_is", "gaussian", "y_regression", ["x2"], [2], num_knots=[5],
         spline_orders=[3]),
    _gam("poisson_ms", "poisson", "y_count", ["x3"], [3], num_knots=[5], spline_orders=[3]),
    _gam("multinomial_cs_tp", "multinomial", "y_multinomial", ["x2", ["x3", "x1"]], [0, 1],
         num_knots=[5, 7]),
    _gam("ordinal_cs", "ordinal", "y_ordinal", ["x2"], [0], num_knots=[5]),
    _gam("tweedie_every_spline", "tweedie", "y_positive", ["x3", "x2", ["x2", "x3"], "x3"],
         [2, 0, 1, 3], num_knots=[4, 5, 6, 5], spline_orders=[2, -1, -1, 3],
         tweedie_variance_power=1.5, tweedie_link_power=0),
    _gam("gaussian_cs_is", "gaussian", "y_regression", ["x2", "x3"], [0, 2], num_knots=[5, 4],
         spline_orders=[-1, 2]),
    # genmodel centres the M-spline with the cubic spline's matrix (it fits): its answers, kept
    _gam("poisson_cs_ms", "poisson", "y_count", ["x2", "x3"], [0, 3], num_knots=[7, 4],
         spline_orders=[-1, 3]),
    _gam("gamma_cs_skip_missing", "gamma", "y_positive", ["x2"], [0], num_knots=[5],
         link="log", missing_values_handling="Skip"),
]
