"""The model lab: datasets from described films, caption metrics, comparisons of narrators,
LoRA fine-tuning and hyper-parameter search, all tracked in MLflow.

Pure-Python parts (metrics, rules, the dataset folder format) import nothing heavy; the parts
that train or track import torch, peft, optuna and mlflow inside their functions, and a missing
one becomes an install hint (``pip install 'video-narrator[lab]'``).
"""

from __future__ import annotations

INSTALL_HINT = "pip install 'video-narrator[lab]'"


class LabError(Exception):
    """Something the lab cannot do; the message is one plain sentence saying why and what to do."""


def need(module: str) -> object:
    """Import ``module`` or raise LabError with the install hint."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise LabError(f"The model lab needs {module.split('.')[0]}, which is not installed: "
                       f"{INSTALL_HINT}") from exc
