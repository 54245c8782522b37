"""Paths inside the source checkout converge runs from (installed editable, as `scripts/setup`
does): the demo, the Mage pipelines, and the tests' and benchmarks' data, named once."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: public h2o-3 MOJOs with genmodel's answers
CORPUS = REPO / "tests" / "data" / "mojo-corpus"
#: models of every kind H2O exports, with genmodel's answers (tests/conformance/generate.py)
CONFORMANCE = REPO / "tests" / "data" / "conformance"
PIPELINES = REPO / "pipelines"
