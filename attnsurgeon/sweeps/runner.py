"""``attnsurgeon sweep`` / ``attnsurgeon.sweep()``: every variant (module x position x args) made, checked, costed
and optionally trained.

>>> import attnsurgeon
>>> rows = attnsurgeon.sweep("yolo11n.yaml", modules="SE,CBAM,EMA", at="8,10", output="sweep")  # doctest: +SKIP
>>> [(r["name"], r["params"], r["gflops"]) for r in rows]  # doctest: +SKIP

The base model is the first row (the reference). Every variant's YAML is written into the output directory under a
systematic name (``yolo11n-SE-after8.yaml``, ``yolo11n-SE_8-after8.yaml`` with an args grid); ``results.json`` and
``results.csv`` are rewritten after every variant, and a rerun skips the rows already done with the same settings.
A variant that fails is a row with its reason, never the end of the sweep. Costing is in :mod:`attnsurgeon.sweeps.cost`,
training in :mod:`attnsurgeon.sweeps.train`, the results files in :mod:`attnsurgeon.sweeps.store`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsurgeon.core import augment_graph, publish, sizes
from attnsurgeon.core import graph as graph_mod
from attnsurgeon.core.progress import SweepProgress
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import AttnSurgeonError, UsageError, first_line
from attnsurgeon.ops import surgery as api
from attnsurgeon.sources import plugins, recorded
from attnsurgeon.sweeps.plan import SweepPlan, Variant, parse_args_grid, parse_at, parse_modules, plan, resolve_at
from attnsurgeon.sweeps.store import ResultsStore, row_key

OPS = ("insert", "augment")
CHECKS = ("layer", "model")
LATENCY = ("delta", "full")
# (stage, variant name, done, total): "cost", "train", "skip" and "done" per variant.


# --------------------------------------------------------------------------------------------------------------------
# Running


@dataclass
class Settings:
    """What shapes a row's figures; part of every row's key."""

    model: str
    scale: str
    imgsz: int
    device: str
    checks: str = "layer"
    latency: str = "delta"
    runs: int | None = None
    train: dict[str, Any] | None = None  # data, epochs, batch, imgsz, weights, identity_init
    model_digest: str = ""  # of the model file's text: an edited model is a new sweep, not rows to reuse
    formats: tuple[str, ...] = ()  # --formats: exported, checked and timed in each (sweeps.formats)

    def cost_fields(self) -> dict[str, Any]:
        fields = {"model": self.model, "model_digest": self.model_digest, "scale": self.scale, "imgsz": self.imgsz,
                  "device": self.device, "checks": self.checks, "latency": self.latency}  # fmt: skip
        if self.formats:  # absent otherwise, so the rows of a sweep without --formats keep their keys
            fields["formats"] = list(self.formats)
        return fields


@dataclass
class SweepRun:
    """A sweep in progress: the plan, the store, what was skipped and what failed."""

    directory: Path
    settings: Settings
    variants: list[Variant]
    store: ResultsStore
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    deployments: Any = None  # sweeps.formats.BaseDeployments while costing with --formats

    def key(self, variant: Variant) -> str:
        return row_key({**variant.identity(), **self.settings.cost_fields()})

    def rows(self) -> list[dict[str, Any]]:
        return [r for r in (self.store.get(self.key(v)) for v in self.variants) if r is not None]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows() if r["status"] != "ok" or r.get("train_status") == "failed"]


PLAN_FIELDS = frozenset(f.name for f in dataclasses.fields(SweepPlan))
RUN_KEYWORDS = ("retry_failed", "ray", "gpus_per_trial", "cpus_per_trial", "asha", "progress")


def sweep(
    model: str | Path, modules: str | Sequence[str], at: str | int | Sequence[str | int], output: str | Path,
    **keywords: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    """Make, check and cost every variant (and train each with ``train=DATA.yaml``); return the rows, base first.

    ``keywords``: the fields of :class:`SweepPlan` and the parameters of :func:`run` (``retry_failed``, ``ray``,
    ``gpus_per_trial``, ``cpus_per_trial``, ``asha``, ``progress``). See :func:`start` and :func:`run` for notebooks
    that want the :class:`SweepRun` (failures, skipped rows).
    """
    unknown = sorted(set(keywords) - PLAN_FIELDS - set(RUN_KEYWORDS))
    if unknown:
        raise TypeError(f"sweep() got an unexpected keyword argument {unknown[0]!r}")
    job = start(model, modules, at, output, **{k: v for k, v in keywords.items() if k in PLAN_FIELDS})
    run(job, **{k: v for k, v in keywords.items() if k in RUN_KEYWORDS})
    return job.rows()


def start(what: SweepPlan | str | Path, *args: Any, **keywords: Any) -> SweepRun:
    """Check every input and plan the variants (no torch); the output directory is created, its results read.

    Takes a :class:`SweepPlan`, or the arguments of one (``start("yolo11n.yaml", "SE", "8", "out", imgsz=320)``).
    """
    if isinstance(what, SweepPlan) and (args or keywords):
        raise TypeError("start() takes a SweepPlan alone, or the arguments of one")
    p = what if isinstance(what, SweepPlan) else SweepPlan(what, *args, **keywords)
    choices = ((p.op, OPS, "--op"), (p.checks, CHECKS, "--checks"), (p.latency, LATENCY, "--latency"))
    for value, allowed, option in choices:
        if value not in allowed:
            raise UsageError(f"{option} {value!r}: use one of {', '.join(allowed)}")
    sizes.check_square(p.imgsz)
    from attnsurgeon.sweeps.formats import parse_formats

    formats = parse_formats(p.formats)
    doc = model_doc.load(p.model)
    if p.scale == "all":
        raise UsageError("--scale all: a sweep compares variants at one scale; give n, s, m, l or x")
    scales, warnings = model_doc.resolve_scales(doc, p.scale)
    stem = (model_doc.with_scale(doc.stem, scales[0]) if p.scale else None) or doc.stem
    specs = parse_modules(p.modules)
    ats = parse_at(p.at)
    for a in ats:
        resolve_at(doc.graph, a)  # named positions unknown here fail now, not once per variant
    grid = parse_args_grid(p.args_grid, specs)
    directory = Path(p.output).expanduser()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"-o {p.output}: is a file; give a directory for the sweep's YAMLs and results")
    train_settings = None
    if p.train is not None:
        from attnsurgeon.sweeps.train import train_settings as make_train_settings

        train_settings = make_train_settings(p.train, p.epochs, p.batch, p.train_imgsz or p.imgsz,
                                             p.train_device or p.device, p.weights, p.identity_init)  # fmt: skip
    elif p.weights is not None:
        raise UsageError("--weights applies to training; add --train DATA.yaml")
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(doc.text.encode("utf-8")).hexdigest()[:16]
    settings = Settings(str(doc.path), scales[0], p.imgsz, str(p.device), p.checks, p.latency, p.runs, train_settings,
                        digest, formats)  # fmt: skip
    job = SweepRun(directory, settings, plan(stem, specs, ats, p.op, grid), ResultsStore.open(directory))
    job.warnings += warnings
    return job


def run(
    job: SweepRun,
    retry_failed: bool = False,
    ray: str | bool | None = None,
    gpus_per_trial: float = 0.0,
    cpus_per_trial: float = 1.0,
    asha: bool = False,
    progress: SweepProgress | None = None,
) -> SweepRun:
    """Cost every variant not done yet, then train every one not trained yet (with ``job.settings.train``)."""
    step = progress or (lambda stage, name, done, total: None)
    if ray is not None and ray is not False and job.settings.train is None:
        raise UsageError("--ray runs training trials; add --train DATA.yaml")
    if ray is not None and ray is not False:
        from attnsurgeon.sweeps.ray_tune import require_ray

        require_ray()
    _cost_all(job, retry_failed, step)
    if job.settings.train is not None:
        from attnsurgeon.sweeps import train as sweep_train

        if ray is not None and ray is not False:
            from attnsurgeon.sweeps.ray_tune import train_with_ray

            train_with_ray(job, None if ray is True else str(ray), gpus_per_trial, cpus_per_trial, asha, retry_failed,
                           step)  # fmt: skip
        else:
            sweep_train.train_all(job, retry_failed, step)
    return job


def _cost_all(job: SweepRun, retry_failed: bool, step: SweepProgress) -> None:
    todo = []
    for v in job.variants:
        row = job.store.get(job.key(v))
        if row is not None and (row["status"] == "ok" or not retry_failed):
            job.skipped.append(v.name)
            continue
        todo.append(v)
    total = len(job.variants)
    done = total - len(todo)
    if not todo:
        return
    from attnsurgeon.sweeps import cost as sweep_cost

    s = job.settings
    doc = model_doc.load(s.model)
    base = sweep_cost.cost_base(doc.plain(), s.scale, f"{job.variants[0].name}.yaml", s.device, s.imgsz, s.runs)
    if s.formats:
        from attnsurgeon.sweeps.formats import BaseDeployments

        job.deployments = BaseDeployments(base.model, s.imgsz)
    with _gc_frozen():
        _cost_each(job, todo, base, doc, done, total, step)


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """What exists before the variants (torch, Ultralytics, the base) is left out of every garbage collection while
    they are costed: a full collection over it costs 0.1-0.3 s, and variants trigger many."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _cost_each(job: SweepRun, todo: list[Variant], base: Any, base_doc: model_doc.ModelDoc, done: int,
               total: int, step: SweepProgress) -> None:  # fmt: skip

    for v in todo:
        step("cost", v.name, done, total)
        row = _new_row(job, v)
        try:
            if v.op == "base":
                base_text = text_writer.with_newline(_base_copy(job, base_doc), base_doc.newline)  # CRLF stays CRLF
                publish.publish(job.directory / f"{v.name}.yaml", base_text, force=True)
                row.update(base.row(), yaml=f"{v.name}.yaml", layers=[])
                if job.settings.formats:
                    from attnsurgeon.sweeps.formats import base_row

                    row.update(base_row(job.deployments, job.settings.formats, job.settings.runs))
            else:
                _cost_variant(job, v, base, base_doc, row)
        except AttnSurgeonError as exc:
            row.update(status="failed", reason=str(exc))
        except Exception as exc:  # a variant's own failure (an exception in its module) must not end the sweep
            row.update(status="failed", reason=first_line(exc))
        job.store.put(row)
        done += 1
        step("done", v.name, done, total)


def _base_copy(job: SweepRun, base_doc: model_doc.ModelDoc) -> str:
    """The base YAML's text for the sweep folder: as it is, but for the plugin files it lists, named again relative
    to the sweep folder (a training process reads the copy there)."""
    if plugins.YAML_KEY not in base_doc.data:
        return base_doc.text
    tree = model_doc.copy_doc(base_doc).data
    _record(job, tree)
    same = recorded.recorded_entries(tree) == recorded.recorded_entries(base_doc.data)
    return base_doc.text if same else text_writer.keys_text(base_doc, tree)


def _record(job: SweepRun, tree: Any) -> None:
    """List the plugin files a variant's rows need under ``attnsurgeon_plugins``, relative to the sweep folder."""
    for warning in recorded.record(tree, job.directory, tree_edits.flow_seq):
        if warning not in job.warnings:
            job.warnings.append(warning)


def _new_row(job: SweepRun, v: Variant) -> dict[str, Any]:
    s = job.settings
    return {"name": v.name, "op": v.op, "module": v.module or None, "category": v.category or None,
            "args": list(v.args) if v.op != "base" else None, "at": v.at or None, "scale": s.scale or None,
            "imgsz": s.imgsz, "device": s.device, "status": "ok", "reason": None, "key": job.key(v)}  # fmt: skip


def _cost_variant(job: SweepRun, v: Variant, base: Any, base_doc: model_doc.ModelDoc, row: dict[str, Any]) -> None:
    from attnsurgeon.checks import verify
    from attnsurgeon.sweeps import cost as sweep_cost
    from attnsurgeon.ultralytics_bridge import ultra

    s = job.settings
    after = resolve_at(base_doc.graph, v.at)
    doc = model_doc.copy_doc(base_doc)
    spec, values = api.module_args(v.module, list(v.args))
    name, row_args = api.surgery_row(spec, values, False)
    if v.op == "insert":
        result = graph_mod.insert(doc.graph, after, name, row_args)
        fresh = [sweep_cost.FreshLayer(i.index, reads=i.after) for i in result.insertions]
    else:  # augment: the block at each index gets attention inside; no row moves
        result = augment_graph.augment(doc.graph, after, name, row_args)
        fresh = [sweep_cost.FreshLayer(i, replaces=i) for i in result.augmented]
    tree = tree_edits.apply(doc, result, in_place=True)
    _record(job, tree)  # a training process builds the variant from its file: the plugin files go with it
    text, cfg = text_writer.surgery_text(base_doc, result, tree), model_doc.to_plain(tree)
    path = job.directory / f"{v.name}.yaml"
    publish.publish(path, text_writer.with_newline(text, base_doc.newline), force=True)  # the sweep's own folder
    row.update(yaml=path.name, layers=[f.index for f in fresh])
    checks = [verify.check_liveness(result.graph, [f.index for f in fresh])] if v.op == "insert" else []
    try:
        model = ultra.build_model(cfg, s.scale or None, path.name, seed=0)
    except Exception as exc:
        checks.append(verify.Check("build", False, first_line(exc)))
    else:
        checks.append(verify.Check("build", True, f"{len(model.model)} layers"))
        if s.checks == "layer":
            checks += sweep_cost.layer_checks(base, model, fresh)
        else:
            checks += sweep_cost.model_checks(base, model, fresh)
    failed = [c for c in checks if c.ok is False]
    row["checks"] = ", ".join(c.name for c in checks if c.ok) or None
    if failed:
        row.update(status="failed", reason=f"check '{failed[0].name}' failed: {failed[0].detail}")
        return
    if s.formats:  # before costing fuses the model's layers
        from attnsurgeon.sweeps.formats import variant_row

        row.update(variant_row(path, job.deployments, str(s.model), s.scale, s.formats, s.runs))
    row.update(sweep_cost.variant_costs(base, model, fresh, s.latency, s.runs))
