"""Fixtures for the MOJO scorer tests: the conformance corpus and genmodel's answers."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
CORPUS_DIR = Path(
    os.environ.get("CONVERGE_MOJO_CORPUS", str(_HERE.parents[2] / "shared" / "mojo-corpus"))
)
PREDICT_CSV_NA = ("", "NA", "N/A", "-")  # cells PredictCsv drops before building a row


def corpus_names() -> list[str]:
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p.stem for p in CORPUS_DIR.glob("*.zip"))


@dataclass
class Fixture:
    name: str
    zip_path: Path
    header: list[str]
    rows: list[list[str]]
    expected_header: list[str]
    expected: list[list[str]]

    def records(self) -> list[dict]:
        """Rows as PredictCsv hands them to genmodel: strings, NA-like cells left out."""
        return [
            {h: v for h, v in zip(self.header, r) if v not in PREDICT_CSV_NA} for r in self.rows
        ]

    def expected_value(self, i: int, col: str):
        v = self.expected[i][self.expected_header.index(col)]
        if col == "predict" and not _is_hex(v):
            return v
        return math.nan if v == "NA" else float.fromhex(v)


def _is_hex(v: str) -> bool:
    return "0x" in v or v == "NA"


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def load_fixture(name: str) -> Fixture:
    inp = _read_csv(CORPUS_DIR / f"{name}.input.csv")
    exp = _read_csv(CORPUS_DIR / f"{name}.expected.csv")
    return Fixture(name, CORPUS_DIR / f"{name}.zip", inp[0], inp[1:], exp[0], exp[1:])


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS_DIR.is_dir():
        pytest.skip(f"MOJO corpus not found at {CORPUS_DIR} (set CONVERGE_MOJO_CORPUS)")
    return CORPUS_DIR


def pytest_generate_tests(metafunc):
    if "corpus_name" in metafunc.fixturenames:
        names = corpus_names()
        metafunc.parametrize(
            "corpus_name",
            names or [pytest.param("absent", marks=pytest.mark.skip(
                reason=f"MOJO corpus not found at {CORPUS_DIR} (set CONVERGE_MOJO_CORPUS)"))],
        )


@pytest.fixture
def fixture(corpus_name: str) -> Fixture:
    return load_fixture(corpus_name)
