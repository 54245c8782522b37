"""Requests merged into one scoring call: one bad request fails alone, its neighbours get the same
answers as when scored on their own (inline and batch modes)."""

from __future__ import annotations

import asyncio

import pytest

from converge.checkout import CORPUS
from converge.mojo import load_mojo
from converge.serving.holder import LoadedModel
from converge.serving.scoring import Scorer, predict_rows
from converge.serving.testing import read_rows



@pytest.mark.parametrize("mode", ["inline", "batch"])
def test_a_bad_request_fails_alone(mode):
    loaded = LoadedModel("m", 1, "0" * 64, load_mojo(CORPUS / "binomial.zip", backend="native"))
    good = [[row] for row in read_rows(CORPUS / "binomial.input.csv", 6)]
    categorical = next(n for n, d in loaded.model.domains.items() if d is not None)
    bad = [{**good[0][0], categorical: 2.5}]  # a fraction for a category: the scorer refuses it
    alone = [predict_rows(loaded, records) for records in good]
    scorer = Scorer(mode, workers=1)

    async def together():
        return await asyncio.gather(*(scorer.score(loaded, r) for r in [*good[:3], bad, *good[3:]]),
                                    return_exceptions=True)

    try:
        answers = asyncio.run(together())
    finally:
        scorer.close()
    assert isinstance(answers[3], Exception) and categorical in str(answers[3])
    assert answers[:3] + answers[4:] == alone
