"""JSON booleans reach the scorer in the form H2O trained on (genmodel refuses raw booleans)."""

from types import SimpleNamespace

from converge.serving.scoring import h2o_booleans

MODEL = SimpleNamespace(domains={"promo": ["False", "True"], "price": None})


def test_booleans_become_levels_for_categoricals_and_numbers_otherwise():
    rows = h2o_booleans(MODEL, [{"promo": True, "price": False, "city": "x"}])
    assert rows == [{"promo": "True", "price": 0.0, "city": "x"}]


def test_rows_without_booleans_are_passed_through_untouched():
    rows = [{"promo": "True", "price": 1.5}]
    assert h2o_booleans(MODEL, rows) is rows
