"""The results of a sweep: one row per variant, kept in ``results.json`` and ``results.csv`` (the same rows).

Both files are rewritten atomically after every variant, so an interrupted sweep loses nothing. A row is keyed by
the variant's identity and the settings that shape its figures (model, scale, image size, device, checks, training
settings), so a rerun with the same settings finds its rows done and skips them, and a rerun with other settings adds
rows beside them. Pareto fronts are computed here too. No torch, nothing printed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attnsurgeon.core.publish import publish
from attnsurgeon.errors import OutputError
from attnsurgeon.ultralytics_bridge.exporting import FORMATS as _EXPORT_FORMATS

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
FORMAT = 1

# Column order of results.csv (results.json rows carry the same keys).
COLUMNS = (
    "name",
    "op",
    "module",
    "category",
    "args",
    "at",
    "layers",
    "scale",
    "imgsz",
    "device",
    "status",
    "reason",
    "params",
    "gflops",
    "gflops_exact",
    "latency_ms",
    "mAP50",
    "mAP50-95",
    "precision",
    "recall",
    "train_s",
    "train_status",
    "run_dir",
    "yaml",
    "checks",
    "key",
    "train_key",
)
# ``sweep --formats``: per format, the export check (pass/fail), the deployed median (ms) and its ratio to the base's;
# the reasons of the formats that failed, by format. In the files only once some row has them.
DEPLOY_FORMATS = tuple(_EXPORT_FORMATS)
DEPLOY_COLUMNS = (*(f"{f}_{c}" for f in DEPLOY_FORMATS for c in ("check", "ms", "ratio")), "deploy_reasons")
TRAIN_COLUMNS = ("mAP50", "mAP50-95", "precision", "recall", "train_s", "train_status", "run_dir", "train_key")
# Metric name -> True when larger is better (used for sorting and Pareto fronts).
METRICS = {
    "params": False,
    "gflops": False,
    "gflops_exact": False,
    "latency_ms": False,
    "mAP50": True,
    "mAP50-95": True,
    "precision": True,
    "recall": True,
    "train_s": False,
}


def row_key(fields: dict[str, Any]) -> str:
    """A short stable hash of what makes a row: the same fields always give the same key."""
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class ResultsStore:
    """The rows of one sweep directory, in the order they were first written."""

    def __init__(self, directory: Path, rows: Iterable[dict[str, Any]] = ()) -> None:
        self.directory = directory
        self._rows: dict[str, dict[str, Any]] = {}
        for row in rows:
            self._rows[row["key"]] = row

    @classmethod
    def open(cls, directory: Path) -> ResultsStore:
        """The store of ``directory`` with the rows a previous run wrote (none for a new directory)."""
        path = directory / RESULTS_JSON
        if not path.exists():
            return cls(directory)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data["rows"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) and "key" in r for r in rows):
                raise ValueError("rows are not a list of keyed rows")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutputError(
                f"{path}: is not a results file of an attnsurgeon sweep ({exc}); choose another -o directory"
            ) from exc
        return cls(directory, rows)

    def get(self, key: str) -> dict[str, Any] | None:
        return self._rows.get(key)

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows.values())

    def put(self, row: dict[str, Any]) -> None:
        """Add or update a row and rewrite both files atomically."""
        self._rows[row["key"]] = {c: row.get(c) for c in (*COLUMNS, *DEPLOY_COLUMNS)}
        self.save()

    def save(self) -> None:
        rows = self.rows()
        payload = {"format": FORMAT, "columns": list(columns_of(rows)), "rows": rows}
        # the sweep's own records, rewritten after every variant by design: force
        publish(self.directory / RESULTS_JSON, json.dumps(payload, indent=1, default=str) + "\n", force=True)
        publish(self.directory / RESULTS_CSV, to_csv(rows), force=True)


def columns_of(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The columns of the results files: :data:`COLUMNS`, then the deployment columns some row has a value in."""
    deployed = tuple(c for c in DEPLOY_COLUMNS[:-1] if any(r.get(c) is not None for r in rows))
    return COLUMNS + deployed + (DEPLOY_COLUMNS[-1:] if deployed else ())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return value


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = columns_of(rows)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def pareto_front(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of the points no other point dominates (lower cost and higher quality, one of them strictly)."""
    front = set()
    for i, (cost, quality) in enumerate(points):
        dominated = any(
            c <= cost and q >= quality and (c < cost or q > quality) for j, (c, q) in enumerate(points) if j != i
        )
        if not dominated:
            front.add(i)
    return front


def pareto_rows(rows: Sequence[dict[str, Any]], cost: str, quality: str = "mAP50-95") -> set[str]:
    """Keys of the rows on the (``cost`` lower, ``quality`` higher) Pareto front, among the good rows with both."""

    def usable(r: dict[str, Any]) -> bool:
        return r.get("status") == "ok" and all(isinstance(r.get(k), (int, float)) for k in (cost, quality))

    good = [r for r in rows if usable(r)]
    front = pareto_front([(float(r[cost]), float(r[quality])) for r in good])
    return {good[i]["key"] for i in front}


def sort_rows(rows: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Best first by ``metric`` (rows without a value last, in their order)."""
    larger_better = METRICS[metric]
    have = [r for r in rows if isinstance(r.get(metric), (int, float))]
    missing = [r for r in rows if not isinstance(r.get(metric), (int, float))]
    return sorted(have, key=lambda r: float(r[metric]), reverse=larger_better) + missing
