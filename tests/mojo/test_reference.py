"""The reference the other tests compare with (genmodel run directly) answers what genmodel's own
``PredictCsv`` printed for the corpus, bit for bit, and refuses what genmodel refuses."""

from __future__ import annotations

import pytest

from converge.reference import GenmodelRefused, GenmodelReference


def test_reference_prints_what_predictcsv_printed(corpus_name, corpus_loader):
    fixture = corpus_loader(corpus_name)
    reference = GenmodelReference(fixture.zip_path)
    got = reference.predict(fixture.records())
    assert len(got) == len(fixture.expected)
    for i, answer in enumerate(got):
        for column in fixture.expected_header:
            want = fixture.expected_value(i, column)
            value = answer[column]
            if isinstance(want, str):
                assert str(value) == want, (i, column)
            else:
                assert value == want, (i, column, value, want)


def test_genmodel_refuses_types_it_has_no_rule_for(corpus_dir):
    reference = GenmodelReference(corpus_dir / "binomial_titanic.zip")
    for bad in (True, [1], {"a": 1}, object()):
        with pytest.raises(GenmodelRefused, match="age"):
            reference.predict([{"age": bad}])
    with pytest.raises(GenmodelRefused, match="sex"):
        reference.predict([{"sex": 1.0}])  # a categorical takes text only
