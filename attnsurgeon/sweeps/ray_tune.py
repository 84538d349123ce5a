"""Training the variants of a sweep as Ray Tune trials, one per variant, when one machine is not enough.

Ray is an optional extra (``pip install attnsurgeon[ray]``). Each trial trains one variant with Ultralytics' own
trainer in a Ray worker; Ultralytics' Ray Tune callback reports every epoch's metrics, so an ASHA scheduler can stop
weak variants early on ``metrics/mAP50-95(B)``. As each trial ends, the driver reads the run directory's
``results.csv`` and rewrites the sweep's results files, exactly as the local runner does. The workers of a cluster
need attnsurgeon installed (its modules must resolve there); the run directories must be on storage the driver reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import AttnSurgeonError, UsageError
from attnsurgeon.sweeps import train as sweep_train

RAY_METRIC = "metrics/mAP50-95(B)"  # as Ultralytics' Ray Tune callback reports it


def require_ray() -> None:
    try:
        import ray.tune  # noqa: F401
    except ImportError:
        raise UsageError("--ray needs Ray Tune, which is not installed: pip install attnsurgeon[ray]") from None


def _trial(config: dict[str, Any]) -> None:
    """One Ray trial: train one variant (Ultralytics reports each epoch to Tune)."""
    sweep_train.train_in_process(config["variant"]["arguments"])


def train_with_ray(
    job: Any,
    address: str | None,
    gpus_per_trial: float,
    cpus_per_trial: float,
    asha: bool,
    retry_failed: bool,
    step: Callable[[str, str, int, int], None],
) -> None:
    """Every costed variant not trained with these settings, as one Ray Tune trial each."""
    import ray

    settings = job.settings.train
    key = sweep_train.train_key(settings)
    rows = {r["name"]: r for r in job.rows() if sweep_train.needs_training(r, key, retry_failed)}
    total = len(job.rows())
    done = [total - len(rows)]
    if not rows:
        return
    project = sweep_train.runs_dir(job.directory)
    project.mkdir(exist_ok=True)
    device = "0" if gpus_per_trial > 0 else "cpu"  # Ray gives each trial its own visible GPU(s)
    space = _trial_space(job, rows, key, device, project)
    if not space:
        return
    callback = _rows_callback(job, rows, key, project, done, total, step)
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    step("train", f"{len(space)} Ray trials", done[0], total)
    _tuner(job, space, asha, cpus_per_trial, gpus_per_trial, callback).fit()


def _trial_space(
    job: Any, rows: dict[str, dict[str, Any]], key: str, device: str, project: Path
) -> list[dict[str, Any]]:
    """One trial's config per variant: its name and training arguments; a variant whose model cannot be made is a
    failed row at once (no trial)."""
    settings = job.settings.train
    base_graph = model_doc.load(job.settings.model).graph
    space = []
    for name, row in rows.items():
        try:
            source = sweep_train.model_source(job.directory, row, settings, base_graph)
        except AttnSurgeonError as exc:
            job.store.put({**row, "train_key": key, "train_status": "failed", "reason": str(exc)})
            continue
        space.append({"name": name, "arguments": sweep_train.train_arguments(source, settings, device, project, name)})
    return space


def _rows_callback(
    job: Any, rows: dict[str, dict[str, Any]], key: str, project: Path, done: list[int], total: int,
    step: Callable[[str, str, int, int], None],
) -> Any:  # fmt: skip
    """A Tune callback in the driver: a finished (or failed) trial becomes its row at once (``done`` counts them)."""
    from ray import tune

    class _Rows(tune.Callback):
        def _finish(self, trial: Any, error: str | None) -> None:
            name = trial.config["variant"]["name"]
            job.store.put({**rows[name], **_trial_outcome(job, project / name, key, error)})
            done[0] += 1
            step("done", name, done[0], total)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._finish(trial, None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._finish(trial, f"failed; see {trial.local_path or 'the Ray logs'}")

    return _Rows()


def _trial_outcome(job: Any, run_dir: Path, key: str, error: str | None) -> dict[str, Any]:
    """What a trial adds to its row: the run directory and its metrics, or why it failed."""
    update: dict[str, Any] = {"train_key": key, "run_dir": os.path.relpath(run_dir, job.directory)}
    try:
        if error:
            raise RuntimeError(error)
        update.update(sweep_train.read_results(run_dir), train_status="ok", reason=None)
    except (AttnSurgeonError, RuntimeError) as exc:
        update.update(train_status="failed", reason=f"Ray trial: {exc}")
    return update


def _tuner(
    job: Any, space: list[dict[str, Any]], asha: bool, cpus_per_trial: float, gpus_per_trial: float, callback: Any
) -> Any:
    """One grid trial per variant, maximising mAP50-95; with ``asha`` weak trials stop early."""
    from ray import tune

    scheduler = None
    if asha:
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="epoch", max_t=job.settings.train["epochs"], grace_period=1)
    return tune.Tuner(
        tune.with_resources(_trial, {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
        param_space={"variant": tune.grid_search(space)},
        tune_config=tune.TuneConfig(metric=RAY_METRIC, mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(
            name="ray", storage_path=str(job.directory.resolve()), verbose=0, callbacks=[callback]
        ),
    )
