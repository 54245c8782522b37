"""What every benchmark writes: the machine it ran on, and its own section of BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from converge.checkout import REPO

BENCHMARKS = REPO / "BENCHMARKS.md"


def machine() -> str:
    """CPU model, core count and kernel: enough to tell two runs' machines apart."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write_section(text: str, section: str, path: Path = BENCHMARKS) -> None:
    """Replace ``section`` (up to the next ``## `` heading) and leave the other sections alone."""
    current = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated)


def publish(text: str, section: str, write: bool) -> None:
    """Print a benchmark's section and, unless told not to, put it into BENCHMARKS.md."""
    print(text)
    if write:
        write_section(text, section)


def model_files(root: Path, name: str) -> tuple[Path, Path]:
    """A model by name: (MOJO, CSV of rows to score) from the corpus, else from the trained
    benchmark set of ``bench_mojo_models.py`` (``leader``, ``automl``...: its generated rows)."""
    corpus = root / "tests" / "data" / "mojo-corpus"
    if (corpus / f"{name}.zip").exists():
        return corpus / f"{name}.zip", corpus / f"{name}.input.csv"
    trained = root / "benchmarks" / ".work" / "models"
    if (trained / f"{name}.zip").exists():
        return trained / f"{name}.zip", trained / "data.csv"
    raise SystemExit(f"no model {name!r} in {corpus} or {trained}: run benchmarks/bench_mojo_models.py")
