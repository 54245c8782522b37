"""The training report: one self-contained HTML page a reviewer can open from S3 without a server.

It shows what a walk-forward run is for: the metric of every split over time (does the model hold
up as the test period moves forward?), predicted against actual on the test rows, and variable
importance. Plots are matplotlib PNGs embedded as base64, so the page has no external links.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float = 7.0, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def metric_over_time(results: Sequence[dict[str, Any]]) -> str | None:
    """The primary metric per split, one line per segment, in test-period order."""
    if not results:
        return None
    metric = results[0]["primary_metric"]
    fig, ax = _figure()
    by_segment: dict[str | None, list[dict[str, Any]]] = {}
    for r in results:
        by_segment.setdefault(r.get("segment"), []).append(r)
    for segment, rows in sorted(by_segment.items(), key=lambda kv: str(kv[0])):
        rows = sorted(rows, key=lambda r: r["split"]["test_start_ms"])
        xs = [r["split"]["name"] for r in rows]
        ys = [r["metrics"].get(metric, float("nan")) for r in rows]
        ax.plot(xs, ys, marker="o", label=segment or "all")
    ax.set_title(f"{metric} per walk-forward split (test period)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if len(by_segment) > 1:
        ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def predicted_vs_actual(results: Sequence[dict[str, Any]]) -> str | None:
    """Scatter for regression; a confusion count table drawn as a heat map for classification."""
    actual = [a for r in results for a in r["sample"]["actual"]]
    predicted = [p for r in results for p in r["sample"]["predicted"]]
    if not actual:
        return None
    fig, ax = _figure(5.0, 4.2)
    if results[0]["problem"] == "regression":
        pairs = [
            (float(a), float(p)) for a, p in zip(actual, predicted, strict=True) if a is not None
        ]
        xs, ys = zip(*pairs, strict=True) if pairs else ((), ())
        ax.scatter(xs, ys, s=6, alpha=0.5)
        if xs:
            lo, hi = min(min(xs), min(ys)), max(max(xs), max(ys))
            ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1)
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.set_title("Predicted vs actual (test rows, all splits)")
    else:
        labels = sorted({str(v) for v in actual} | {str(v) for v in predicted})
        index = {v: i for i, v in enumerate(labels)}
        counts = [[0] * len(labels) for _ in labels]
        for a, p in zip(actual, predicted, strict=True):
            counts[index[str(a)]][index[str(p)]] += 1
        ax.imshow(counts, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        for i, row in enumerate(counts):
            for j, c in enumerate(row):
                ax.text(j, i, str(c), ha="center", va="center")
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title("Predicted vs actual (test rows, all splits)")
    return _png(fig)


def importance_plot(importance: Sequence[dict[str, Any]], limit: int = 15) -> str | None:
    if not importance:
        return None
    rows = list(importance)[:limit][::-1]
    fig, ax = _figure(6.0, 0.3 * len(rows) + 1.2)
    ax.barh([r["variable"] for r in rows], [r["importance"] for r in rows])
    ax.set_title("Variable importance (final model, scaled)")
    return _png(fig)


def _table(results: Sequence[dict[str, Any]]) -> str:
    metric_names = sorted({k for r in results for k in r["metrics"]})
    head = "".join(
        f"<th>{html.escape(h)}</th>"
        for h in [
            "split",
            "train rows",
            "test rows",
            "max train time",
            "min test time",
            *metric_names,
            "H2O s",
        ]
    )
    body = []
    for r in sorted(results, key=lambda r: (str(r.get("segment")), r["split"]["test_start_ms"])):
        cells = [
            r["label"],
            r["n_train"],
            r["n_test"],
            _iso(r["max_train_time_ms"]),
            _iso(r["min_test_time_ms"]),
            *[_num(r["metrics"].get(m)) for m in metric_names],
            f"{r['h2o_seconds']:.2f}",
        ]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def render(
    *,
    name: str,
    version: int | None,
    results: Sequence[dict[str, Any]],
    final: dict[str, Any],
    lineage: dict[str, Any],
) -> str:
    """The whole report as one HTML string."""
    images = [
        ("Metric over time", metric_over_time(results)),
        ("Predicted vs actual", predicted_vs_actual(results)),
        ("Variable importance", importance_plot(final.get("variable_importance") or [])),
    ]
    figures = "".join(
        f'<figure><img alt="{html.escape(title)}" src="{src}"><figcaption>{html.escape(title)}'
        "</figcaption></figure>"
        for title, src in images
        if src
    )
    facts = {
        "model": name,
        "version": version if version is not None else "(not registered)",
        "estimator": lineage.get("parameters", {}).get("estimator"),
        "cut-off": lineage.get("cut_off"),
        "rows": lineage.get("row_count"),
        "H2O": lineage.get("h2o_version"),
        "converge": lineage.get("converge_version"),
        "final model metrics (training)": ", ".join(
            f"{k}={_num(v)}" for k, v in (final.get("metrics") or {}).items()
        ),
    }
    facts_html = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()
    )
    title = f"Training report: {name}" + (f" v{version}" if version is not None else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{facts_html}</table>
<h2>Walk-forward splits</h2>
<p>Every split passed the leakage check: its newest training row is older than its oldest test row.</p>
{_table(results)}
<h2>Plots</h2>
{figures}
</body></html>
"""
