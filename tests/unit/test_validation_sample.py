"""The reload's comparison of converge's answers with the trainer's, on plain data: what passes,
and that each kind of difference is refused naming its row and value."""

import math

import pytest

from converge.serving.validation_sample import PROB_TOLERANCE, ValidationMismatch, compare_predictions

CLASSES = [("no", "p0"), ("yes", "p1")]


def _answer(label, p_yes):
    return {"label": label, "probabilities": {"no": 1 - p_yes, "yes": p_yes}}


def _trainer(label, p_yes):
    return {"predict": label, "p0": 1 - p_yes, "p1": p_yes}


def test_identical_answers_and_differences_within_the_tolerance_pass():
    got = [_answer("yes", 0.75), _answer("no", 0.25 + PROB_TOLERANCE / 2)]
    compare_predictions(got, [_trainer("yes", 0.75), _trainer("no", 0.25)], CLASSES)


def test_a_different_label_is_refused_naming_the_row():
    with pytest.raises(ValidationMismatch, match="row 1: label 'yes' != trainer's 'no'"):
        compare_predictions([_answer("yes", 0.7)] * 2, [_trainer("yes", 0.7), _trainer("no", 0.7)], CLASSES)


def test_a_probability_beyond_the_tolerance_is_refused_naming_the_class():
    got = [{"label": "yes", "probabilities": {"no": 0.25, "yes": 0.75 + 10 * PROB_TOLERANCE}}]
    with pytest.raises(ValidationMismatch, match=r"row 0: P\(yes\)"):
        compare_predictions(got, [_trainer("yes", 0.75)], CLASSES)


def test_a_missing_probability_is_refused():
    with pytest.raises(ValidationMismatch, match="no probability for class 'no'"):
        compare_predictions([{"label": "yes", "probabilities": {"yes": 1.0}}], [_trainer("yes", 1.0)], CLASSES)


def test_regression_values_compare_within_the_tolerance_and_nan_equals_nan():
    got = [{"label": 1.5 + PROB_TOLERANCE / 2}, {"label": math.nan}]
    compare_predictions(got, [{"predict": 1.5}, {"predict": math.nan}], [])
    with pytest.raises(ValidationMismatch, match="row 0"):
        compare_predictions([{"label": 1.6}], [{"predict": 1.5}], [])


def test_models_with_their_own_outputs_compare_every_output():
    got = [{"label": 2.0, "outputs": {"cluster": 2.0, "score": 0.5}}]
    compare_predictions(got, [{"cluster": 2, "score": 0.5}], [])
    with pytest.raises(ValidationMismatch, match="row 0: score 0.5 != trainer's 0.6"):
        compare_predictions(got, [{"cluster": 2, "score": 0.6}], [])
