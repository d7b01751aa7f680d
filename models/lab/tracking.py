"""MLflow tracking for the lab: where runs go and one small run object.

By default runs go to a SQLite store in the user's data folder
(``$XDG_DATA_HOME/video-narrator/lab/mlflow.db``, artifacts beside it), since MLflow 3.7 and
later refuse the old file store unless told; ``MLFLOW_TRACKING_URI`` selects another store or a
server. Runs are written through ``MlflowClient`` (no global active run), so a study can keep a
parent run open while its trials run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.lab import LabError, need

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "video-narrator-lab"


def data_dir() -> Path:
    """``$XDG_DATA_HOME/video-narrator``, else ``~/.local/share/video-narrator``."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "video-narrator"


def lab_dir() -> Path:
    return data_dir() / "lab"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the local SQLite store (its folder is made)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        return uri
    folder = lab_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def check_server(uri: str, timeout: float = 5.0) -> None:
    """LabError at once when the MLflow server does not answer (MLflow's client would retry
    for minutes)."""
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answers; an error page (a proxy, an old server) is for MLflow to judge
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return  # there, but slow: MLflow's client waits longer
        raise LabError(f"The MLflow server at {uri} does not answer ({reason}); start it, or "
                       f"unset MLFLOW_TRACKING_URI to keep runs in the local store.") from exc


def is_local(uri: str) -> bool:
    return uri.startswith("sqlite:")


class Tracker:
    """One experiment in one tracking store."""

    def __init__(self, experiment: str = DEFAULT_EXPERIMENT, uri: str | None = None) -> None:
        mlflow = need("mlflow")
        self.uri = uri or tracking_uri()
        if self.uri.startswith(("http://", "https://")):
            check_server(self.uri)
        try:
            self.client = mlflow.MlflowClient(tracking_uri=self.uri)  # type: ignore[attr-defined]
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                artifacts = None
                if is_local(self.uri):
                    artifacts = (lab_dir() / "artifacts" / experiment).as_uri()
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=artifacts)
            else:
                self.experiment_id = found.experiment_id
        except Exception as exc:  # noqa: BLE001 - any store failure is one sentence for people
            raise LabError(f"The MLflow store at {self.uri} cannot be used: "
                           f"{_first_line(exc)}") from exc
        self.experiment = experiment

    def start(self, name: str, params: Mapping[str, Any] | None = None,
              parent: LabRun | None = None, tags: Mapping[str, str] | None = None) -> LabRun:
        all_tags = dict(tags or {})
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent.run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        lab_run = LabRun(self, run.info.run_id)
        if params:
            lab_run.params(params)
        return lab_run


class LabRun:
    """An open MLflow run; ``finish`` (or ``with``) ends it, FAILED or KILLED on errors."""

    def __init__(self, tracker: Tracker, run_id: str) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self.client = tracker.client

    def params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param  # noqa: PLC0415

        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000])
                                                   for k, v in params.items()])

    def metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric  # noqa: PLC0415

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            Metric(k, float(v), now, step or 0) for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))])

    def tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def json_artifact(self, name: str, data: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="narrate-lab-") as folder:
            path = Path(folder) / name
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
            self.file_artifact(path)

    def file_artifact(self, path: Path) -> None:
        try:
            self.client.log_artifact(self.run_id, str(path))
        except Exception as exc:  # noqa: BLE001 - the figures matter more than a file
            log.warning("MLflow did not keep %s: %s", path.name, _first_line(exc))

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)

    def __enter__(self) -> LabRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            self.finish()
        elif issubclass(kind, KeyboardInterrupt):
            self.finish("KILLED")
        else:
            self.finish("FAILED")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
