"""genmodel's own ``PredictCsv`` in a JVM subprocess: the reference scorer where JPype is not
installed (the training image has Java and h2o.jar for H2O itself, not JPype).

Training uses it to check, before publishing, that a genmodel serving image can score a model the
native reader refuses; the conformance corpus records its output as the expected answers.
"""

from __future__ import annotations

import csv
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from converge.mojo.backends.genmodel import find_h2o_jar

__all__ = ["run_predict_csv", "predict_rows"]


def run_predict_csv(mojo: Path, input_csv: Path, output_csv: Path, *flags: str,
                    timeout_s: float = 300) -> None:
    """``java -cp h2o.jar hex.genmodel.tools.PredictCsv`` on files; raises with genmodel's message."""
    java = Path(os.environ.get("JAVA_HOME", "/usr"), "bin", "java")
    cmd = [str(java) if java.is_file() else "java", "-Xmx512m", "-cp", str(find_h2o_jar()),
           "hex.genmodel.tools.PredictCsv", "--mojo", str(mojo), "--input", str(input_csv),
           "--output", str(output_csv), *flags]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).strip().splitlines()]
        causes = [ln for ln in lines if ln.startswith("Caused by:") or "Exception:" in ln]
        raise RuntimeError(f"genmodel PredictCsv failed: {' '.join(causes[-2:] or lines[-3:])}")


def predict_rows(mojo: bytes, rows: list[dict[str, Any]], features: list[str]) -> list[dict[str, str]]:
    """genmodel's answers for JSON-style rows (None = missing), as PredictCsv prints them."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "model.zip").write_bytes(mojo)
        with open(d / "input.csv", "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(features)
            out.writerows([["" if r.get(c) is None else r[c] for c in features] for r in rows])
        run_predict_csv(d / "model.zip", d / "input.csv", d / "output.csv")
        with open(d / "output.csv", newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
