"""The vision-language models Video Narrator knows, and the ones installed on this computer.

A model is either a GGUF file for llama.cpp with its multimodal projector (``*mmproj*.gguf``)
beside it, a Hugging Face folder for transformers, or the OpenVINO form of such a folder, which
``narrate models convert`` writes beside it (``<folder>-openvino``, ``<folder>-openvino-int8``,
see :func:`openvino_forms`). Catalog models are downloaded by
:func:`models.download.pull` into ``models_dir()/<name>/``; a model counts as installed only when
its ``manifest.json`` is there, and that file is written last. Any local GGUF file or model folder
can be used instead by giving its path to :func:`resolve`.

Nothing here touches the network or imports heavy libraries.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Backend = Literal["llama", "transformers", "openvino"]
Speed = Literal["fast", "medium", "slow"]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
OPENVINO_MANIFEST = "openvino_model.json"
"""Written last into an OpenVINO form: without it the conversion never finished."""
OPENVINO_WEIGHTS = ("int8", "fp16", "fp32", "int4")
"""The weights an OpenVINO form can have, in the order the engine prefers them on the CPU:
int8 answers fastest with the least loss; int4 loses the most."""


class ModelError(Exception):
    """A model cannot be found, downloaded or used. The message is one plain sentence for people."""


@dataclass(frozen=True)
class ModelEntry:
    """One downloadable model.

    Attributes:
        name: short name used on the command line (``narrate models pull NAME``).
        repo_id: Hugging Face repository, ``owner/name``.
        files: paths inside the repository to download. For llama, the model GGUF and its
            projector (the projector has ``mmproj`` in its name); for transformers, the files
            of the folder.
        backend: ``"llama"`` (llama.cpp) or ``"transformers"``.
        size_mb: approximate download size in megabytes (shown to people, not checked).
        speed: rough speed class on a 2-core CPU: ``"fast"``, ``"medium"`` or ``"slow"``.
        licence: the model's licence, as named by its authors.
        description: one sentence for the model list.
        sha256: expected SHA-256 per file, or None when unknown. Without it the download is
            checked against the SHA-256 the hub reports for large (LFS) files, else its size.
    """

    name: str
    repo_id: str
    files: tuple[str, ...]
    backend: Backend
    size_mb: int
    speed: Speed
    licence: str
    description: str
    sha256: dict[str, str] | None = None


# Sizes are approximate (rounded, from the repositories' file listings) and only shown to people.
CATALOG: tuple[ModelEntry, ...] = (
    ModelEntry(
        name="smolvlm-256m",
        repo_id="ggml-org/SmolVLM-256M-Instruct-GGUF",
        files=("SmolVLM-256M-Instruct-Q8_0.gguf", "mmproj-SmolVLM-256M-Instruct-Q8_0.gguf"),
        backend="llama", size_mb=280, speed="fast", licence="Apache-2.0",
        description="Smallest and quickest; short, sometimes vague descriptions.",
    ),
    ModelEntry(
        name="smolvlm-500m",
        repo_id="ggml-org/SmolVLM-500M-Instruct-GGUF",
        files=("SmolVLM-500M-Instruct-Q8_0.gguf", "mmproj-SmolVLM-500M-Instruct-Q8_0.gguf"),
        backend="llama", size_mb=550, speed="fast", licence="Apache-2.0",
        description="Small and quick, noticeably better than the 256M model.",
    ),
    ModelEntry(
        name="smolvlm2-2.2b",
        repo_id="ggml-org/SmolVLM2-2.2B-Instruct-GGUF",
        files=("SmolVLM2-2.2B-Instruct-Q4_K_M.gguf", "mmproj-SmolVLM2-2.2B-Instruct-Q8_0.gguf"),
        backend="llama", size_mb=1700, speed="medium", licence="Apache-2.0",
        description="Good descriptions at a moderate speed.",
    ),
    ModelEntry(
        name="qwen2.5-vl-3b",
        repo_id="ggml-org/Qwen2.5-VL-3B-Instruct-GGUF",
        files=("Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf", "mmproj-Qwen2.5-VL-3B-Instruct-Q8_0.gguf"),
        backend="llama", size_mb=2800, speed="slow", licence="Qwen Research License",
        description="Detailed descriptions and good at reading text on screen; slow without a GPU.",
    ),
    ModelEntry(
        name="gemma-3-4b",
        repo_id="ggml-org/gemma-3-4b-it-GGUF",
        files=("gemma-3-4b-it-Q4_K_M.gguf", "mmproj-model-f16.gguf"),
        backend="llama", size_mb=3300, speed="slow", licence="Gemma Terms of Use",
        description="Detailed, fluent descriptions; slow without a GPU.",
    ),
    ModelEntry(
        name="smolvlm-256m-hf",
        repo_id="HuggingFaceTB/SmolVLM-256M-Instruct",
        files=(
            "config.json", "generation_config.json", "model.safetensors",
            "preprocessor_config.json", "processor_config.json", "chat_template.json",
            "special_tokens_map.json", "added_tokens.json", "tokenizer.json",
            "tokenizer_config.json", "vocab.json", "merges.txt",
        ),
        backend="transformers", size_mb=520, speed="medium", licence="Apache-2.0",
        description="The 256M model for transformers (PyTorch), for use with a GPU.",
    ),
)


def find(name: str, catalog: tuple[ModelEntry, ...] = CATALOG) -> ModelEntry:
    """The catalog entry called ``name`` (case-insensitive); ModelError if there is none."""
    for entry in catalog:
        if entry.name.lower() == name.lower():
            return entry
    names = ", ".join(e.name for e in catalog)
    raise ModelError(f"There is no model called {name} in the catalog; the models are: {names}.")


def models_dir() -> Path:
    """Where downloaded models live: ``$XDG_DATA_HOME/video-narrator/models``."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "video-narrator" / "models"


@dataclass(frozen=True)
class InstalledModel:
    """A model ready to load.

    Attributes:
        name: catalog name, or the file or folder name for a model given by path.
        backend: ``"llama"``, ``"transformers"`` or ``"openvino"``.
        path: the model's folder (for transformers and openvino, the folder to load).
        model_file: the GGUF to load (llama only).
        mmproj: the multimodal projector GGUF (llama only).
        files: every file that belongs to the model.
        repo_id: where it was downloaded from, if it was.
        revision: the repository commit it was downloaded at, if known.
    """

    name: str
    backend: Backend
    path: Path
    model_file: Path | None = None
    mmproj: Path | None = None
    files: tuple[Path, ...] = ()
    repo_id: str | None = None
    revision: str | None = None


def is_mmproj(path: Path | str) -> bool:
    """True for a multimodal projector GGUF: "mmproj" anywhere in the name, as llama.cpp's
    converters and most uploads name them (``mmproj-model-f16.gguf``,
    ``Qwen2.5-VL-3B-Instruct-mmproj-f16.gguf``)."""
    name = Path(path).name.lower()
    return "mmproj" in name and name.endswith(".gguf")


_NOT_A_NAME = re.compile(r"i?q\d+|[kmsl]|xx?s|\d|b?f16|fp16|fp?32|gguf|model|mmproj")
"""Words that say how a file is stored (Q8_0, Q4_K_M, f16), not which model it holds."""


def _name_parts(path: Path) -> set[str]:
    """The words of a file name that say which model it is."""
    parts = re.split(r"[-_\s]+", Path(path).stem.lower())
    return {p for p in parts if p and not _NOT_A_NAME.fullmatch(p)}


def best_projector(model_file: Path, projectors: list[Path]) -> Path | None:
    """The projector among ``projectors`` whose name shares the most words with the model's
    (``mmproj-SmolVLM-500M-f16.gguf`` for ``SmolVLM-500M-Instruct-Q8_0.gguf``, not the 256M
    one); quantization words (Q8_0, f16) do not count. Ties go by name; None when empty."""
    model = _name_parts(model_file)
    candidates = [p for p in projectors if Path(p) != Path(model_file)]

    def rank(p: Path) -> tuple[int, int, str]:
        parts = _name_parts(p)
        return (-len(parts & model), len(parts - model), p.name)

    return min(candidates, key=rank, default=None)


def find_projector(model_file: Path) -> Path | None:
    """The projector GGUF beside ``model_file`` that fits it best (:func:`best_projector`)."""
    folder = Path(model_file).parent
    if not folder.is_dir():
        return None
    return best_projector(Path(model_file),
                          sorted(p for p in folder.iterdir() if p.is_file() and is_mmproj(p)))


def openvino_form(folder: Path, weights: str) -> Path:
    """Where the OpenVINO form of the transformers folder ``folder`` with ``weights`` lives:
    beside it, ``<name>-openvino`` (fp32) or ``<name>-openvino-<weights>``."""
    folder = Path(folder)
    suffix = "-openvino" if weights == "fp32" else f"-openvino-{weights}"
    return folder.parent / (folder.name + suffix)


def openvino_forms(folder: Path) -> dict[str, Path]:
    """The finished OpenVINO forms of the transformers folder ``folder`` (their manifest is
    there), by weights, in the order of :data:`OPENVINO_WEIGHTS`; damage is found when one
    loads."""
    forms = {w: openvino_form(folder, w) for w in OPENVINO_WEIGHTS}
    return {w: p for w, p in forms.items() if (p / OPENVINO_MANIFEST).is_file()}


def is_openvino_folder(folder: Path) -> bool:
    """A folder that is, or was meant to be, an OpenVINO form: its manifest or an IR model
    (``openvino_*.xml``) is there."""
    return (folder / OPENVINO_MANIFEST).exists() or any(folder.glob("openvino_*.xml"))


def read_manifest(folder: Path) -> InstalledModel | None:
    """The model described by ``folder/manifest.json``, or None when it is missing, unreadable
    or names a file that is not there (a half-finished or damaged download)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = tuple(folder / f["name"] for f in data["files"])
        sizes = [f.get("size") for f in data["files"]]
        backend = data["backend"]
        name = data["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for path, size in zip(files, sizes, strict=True):
        if not path.is_file() or (size is not None and path.stat().st_size != size):
            log.warning("model %s in %s is incomplete: %s is missing or has the wrong size",
                        name, folder, path.name)
            return None
    model_file = mmproj = None
    if backend == "llama":
        ggufs = [p for p in files if p.suffix.lower() == ".gguf"]
        model_file = next((p for p in ggufs if not is_mmproj(p)), None)
        projectors = [p for p in ggufs if is_mmproj(p)]
        mmproj = (best_projector(model_file, projectors) if model_file is not None
                  else next(iter(projectors), None))
    return InstalledModel(name=name, backend=backend, path=folder, model_file=model_file,
                          mmproj=mmproj, files=files, repo_id=data.get("repo_id"),
                          revision=data.get("revision"))


def installed(root: Path | None = None) -> list[InstalledModel]:
    """Every complete model in the models folder (each in a subfolder with a manifest), by name."""
    root = models_dir() if root is None else root
    if not root.is_dir():
        return []
    found = (read_manifest(sub) for sub in sorted(root.iterdir()) if sub.is_dir())
    return [m for m in found if m is not None]


def resolve(name_or_path: str | Path, root: Path | None = None) -> InstalledModel:
    """The model to load, from a catalog name that is installed or from a local path.

    A path may be a GGUF file (its projector ``*mmproj*.gguf`` must be beside it), a folder with
    one model GGUF and its projector, a transformers folder (with ``config.json``), or a folder
    made by ``narrate models pull``.
    """
    root = models_dir() if root is None else root
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        return _from_path(path)
    if isinstance(name_or_path, str) and not _looks_like_path(text):
        entry = find(text)
        model = read_manifest(root / entry.name)
        if model is None:
            raise ModelError(f"The model {entry.name} is not installed; run: narrate models pull "
                             f"{entry.name}")
        return model
    what = "file" if path.suffix.lower() == ".gguf" else "file or folder"
    raise ModelError(f"There is no model {what} at {path}; check the path, or give a catalog "
                     "name (narrate models list).")


def _looks_like_path(text: str) -> bool:
    """True for what a person types as a path rather than a catalog name: with a folder
    separator, starting with ~ or ., or naming a .gguf file."""
    return ("/" in text or "\\" in text or text.startswith(("~", "."))
            or text.lower().endswith(".gguf"))


def _from_path(path: Path) -> InstalledModel:
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path} is not a GGUF file; give a .gguf model file or a model "
                             "folder.")
        if is_mmproj(path):
            raise ModelError(f"{path} is a multimodal projector; give the model GGUF beside it "
                             "instead.")
        return _gguf_model(path, path.name)
    manifest = read_manifest(path)
    if manifest is not None:
        return manifest
    if is_openvino_folder(path):  # it holds a copy of config.json too
        return InstalledModel(name=path.name, backend="openvino", path=path,
                              files=tuple(sorted(p for p in path.iterdir() if p.is_file())))
    if (path / "config.json").is_file():
        files = tuple(sorted(p for p in path.rglob("*") if p.is_file()))
        return InstalledModel(name=path.name, backend="transformers", path=path, files=files)
    models = sorted(p for p in path.glob("*.gguf") if not is_mmproj(p))
    if len(models) == 1:
        return _gguf_model(models[0], path.name)
    if len(models) > 1:
        names = ", ".join(p.name for p in models)
        raise ModelError(f"The folder {path} has several model GGUF files ({names}); give the "
                         "path of the one to use.")
    raise ModelError(f"The folder {path} has no model in it: no GGUF file and no config.json.")


def _gguf_model(model_file: Path, name: str) -> InstalledModel:
    projector = find_projector(model_file)
    if projector is None:
        raise ModelError(f"{model_file} has no multimodal projector (mmproj) file beside it; put "
                         "the model's mmproj GGUF in the same folder.")
    return InstalledModel(name=name, backend="llama", path=model_file.parent,
                          model_file=model_file, mmproj=projector,
                          files=(model_file, projector))
