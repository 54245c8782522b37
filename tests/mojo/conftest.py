"""Fixtures for the MOJO scorer tests: the conformance corpus and genmodel's answers."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
CORPUS_DIR = _HERE.parent / "data" / "mojo-corpus"
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
        pytest.fail(f"MOJO corpus missing at {CORPUS_DIR}: it is part of the repository")
    return CORPUS_DIR


def pytest_generate_tests(metafunc):
    if "corpus_name" in metafunc.fixturenames:
        # An empty corpus leaves an empty parameter set: a skip, which fails under CONVERGE_NO_SKIPS.
        metafunc.parametrize("corpus_name", corpus_names())


@pytest.fixture
def fixture(corpus_name: str) -> Fixture:
    return load_fixture(corpus_name)


# -- a real H2O for the trained-model tests ---------------------------------------------------------


def _free_port_pair() -> int:
    """A port P with P+1 also free (H2O listens on both)."""
    import socket

    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            if p >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", p + 1))
                except OSError:
                    continue
                return p
    raise RuntimeError("no free port pair")


class _LocalH2O:
    """One H2O node on 127.0.0.1 (flatfile, no multicast), started from the h2o wheel's jar."""

    def __init__(self, workdir: Path) -> None:
        import time
        import urllib.request

        from converge.mojo.backends.genmodel import find_h2o_jar

        self.port = _free_port_pair()
        self.url = f"http://127.0.0.1:{self.port}"
        flatfile = workdir / "flatfile.txt"
        flatfile.write_text(f"127.0.0.1:{self.port}\n")
        self.log = open(workdir / "h2o.log", "wb")
        java = os.environ.get("H2O_JAVA_HOME")
        java = str(Path(java) / "bin" / "java") if java else "java"
        self.proc = subprocess.Popen(
            [java, "-Xmx1g", "-jar", str(find_h2o_jar()), "-ip", "127.0.0.1",
             "-port", str(self.port), "-nthreads", "1", "-flatfile", str(flatfile),
             "-name", f"converge-mojo-{self.port}", "-ice_root", str(workdir),
             "-web_ip", "127.0.0.1"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"H2O exited early; see {workdir / 'h2o.log'}")
            try:
                with urllib.request.urlopen(self.url + "/3/Cloud", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("H2O did not answer within 120 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def h2o_conn(request, tmp_path_factory):
    """The shared ``h2o_server`` fixture if the suite has one, else a private local node."""
    h2o = pytest.importorskip("h2o")
    own = None
    try:
        url = request.getfixturevalue("h2o_server").url
    except pytest.FixtureLookupError:
        err = None
        for _attempt in range(3):  # a port taken between probe and bind: try another pair
            try:
                own = _LocalH2O(tmp_path_factory.mktemp("h2o"))
                break
            except (OSError, RuntimeError) as e:  # no Java, or the node did not come up
                err = e
        if own is None:
            pytest.skip(f"cannot start H2O: {err}")
        url = own.url
    h2o.connect(url=url, verbose=False)
    h2o.no_progress()
    yield h2o
    with contextlib.suppress(h2o.exceptions.H2OError):  # our client session only; closed is fine
        h2o.connection().close()
    if own is not None:
        own.stop()


@pytest.fixture(scope="session")
def corpus_loader(corpus_dir):
    """``load_fixture`` for tests that pick a corpus entry by name."""
    return load_fixture
