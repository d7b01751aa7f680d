"""A one-tile copy of a SmolVLM (Idefics3) projector, for describing frames quickly on a CPU.

llama.cpp shows an Idefics3-family model each frame the way the model was trained for documents:
scaled up so its longer side is ``clip.vision.preproc_image_size`` (2048 pixels for SmolVLM),
cut into tiles of ``clip.vision.image_size`` (512), plus an overview. A 16:9 frame becomes 12
tiles and the overview: 13 runs of the image encoder, which on a CPU is most of the time of a
"describe now". SmolVLM's authors document a smaller longest edge (N x 512) as the way to trade
detail for speed; with N = 1 llama.cpp encodes the frame once and its overview once.

:func:`one_tile_projector` writes a copy of the projector with that one setting changed (the
tensors are copied byte for byte) into the cache folder, once per projector file, and returns
its path; the original is never touched. The copy is written next to its final name, flushed to
the disk and renamed into place, so an interrupted write leaves nothing half-made behind; a copy
of the wrong size (damaged some other way) is written again.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from models.cache import cache_dir, content_key
from models.vlm.base import VlmError
from models.vlm.gguf import read_gguf

log = logging.getLogger(__name__)

PREPROC_KEY = "clip.vision.preproc_image_size"
TILED_PROJECTORS = ("idefics3",)
"""Projector types whose frames llama.cpp cuts into tiles of ``clip.vision.image_size``."""
SPARE_BYTES = 64 << 20
"""Disk space left free after writing the copy."""
_UINT32, _STRING, _ARRAY = 4, 8, 9
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


@dataclass(frozen=True)
class _Layout:
    """Where the parts of a GGUF file are: each metadata entry's bytes, the tensor infos, and
    the start of the tensor data."""

    version: int
    tensor_count: int
    entries: list[tuple[str, bytes]]
    tensor_infos: bytes
    alignment: int
    data_start: int


def _take(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise VlmError(f"{f.name} ends too early; it may be only partly downloaded.")
    return data


def _skip_value(f: BinaryIO, kind: int) -> None:
    if kind in _SIZES:
        _take(f, _SIZES[kind])
    elif kind == _STRING:
        f.seek(struct.unpack("<Q", _take(f, 8))[0], 1)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", _take(f, 12))
        if item in _SIZES:
            f.seek(_SIZES[item] * count, 1)
        else:
            for _ in range(count):
                _skip_value(f, item)
    else:
        raise VlmError(f"{f.name} has a metadata value of unknown type {kind}.")


def _layout(f: BinaryIO) -> _Layout:
    if _take(f, 4) != b"GGUF":
        raise VlmError(f"{f.name} is not a GGUF file.")
    version, tensor_count, kv_count = struct.unpack("<IQQ", _take(f, 20))
    entries: list[tuple[str, bytes]] = []
    alignment = 32
    for _ in range(kv_count):
        start = f.tell()
        key = _take(f, struct.unpack("<Q", _take(f, 8))[0]).decode("utf-8", "replace")
        kind = struct.unpack("<I", _take(f, 4))[0]
        value_at = f.tell()
        _skip_value(f, kind)
        end = f.tell()
        if key == "general.alignment" and kind == _UINT32:
            f.seek(value_at)
            alignment = struct.unpack("<I", _take(f, 4))[0] or 32
        f.seek(start)
        entries.append((key, _take(f, end - start)))
    infos_start = f.tell()
    for _ in range(tensor_count):
        f.seek(struct.unpack("<Q", _take(f, 8))[0], 1)  # name
        n_dims = struct.unpack("<I", _take(f, 4))[0]
        f.seek(8 * n_dims + 4 + 8, 1)  # dims, type, offset
    infos_end = f.tell()
    f.seek(infos_start)
    infos = _take(f, infos_end - infos_start)
    data_start = -(-infos_end // alignment) * alignment
    return _Layout(version, tensor_count, entries, infos, alignment, data_start)


def _uint32_entry(key: str, value: int) -> bytes:
    name = key.encode("utf-8")
    return struct.pack("<Q", len(name)) + name + struct.pack("<II", _UINT32, value)


def _header_with_setting(f: BinaryIO, key: str, value: int) -> tuple[bytes, int]:
    """The GGUF header of the open file ``f`` with the unsigned 32-bit metadata ``key`` set to
    ``value`` (replaced, or added), padded to the file's alignment; and where the tensor data
    starts in ``f``."""
    layout = _layout(f)
    entries = [(k, raw) for k, raw in layout.entries if k != key]
    entries.append((key, _uint32_entry(key, value)))
    header = b"GGUF" + struct.pack("<IQQ", layout.version, layout.tensor_count, len(entries))
    header += b"".join(raw for _, raw in entries) + layout.tensor_infos
    header += b"\0" * (-len(header) % layout.alignment)
    return header, layout.data_start


def copy_size(source: Path, key: str, value: int) -> int:
    """How many bytes :func:`write_with_setting` writes for these arguments."""
    with open(source, "rb") as f:
        header, data_start = _header_with_setting(f, key, value)
    return len(header) + source.stat().st_size - data_start


def write_with_setting(source: Path, target: Path, key: str, value: int) -> Path:
    """Copy the GGUF file ``source`` to ``target`` with the unsigned 32-bit metadata ``key`` set
    to ``value`` (replaced, or added); everything else is copied unchanged. The copy is written
    to a file of its own beside ``target`` (two writers never share one), flushed to the disk
    and then renamed into place."""
    with open(source, "rb") as f:
        header, data_start = _header_with_setting(f, key, value)
        size = source.stat().st_size
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
        if free < size + SPARE_BYTES:
            raise OSError(errno.ENOSPC, f"{target.parent} has {free >> 20} MiB free and the copy "
                                        f"needs {size >> 20} MiB")
        fd, part_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part",
                                         dir=target.parent)
        part = Path(part_name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(header)
                f.seek(data_start)
                shutil.copyfileobj(f, out, 1 << 22)
                out.flush()
                os.fsync(out.fileno())  # whole on the disk before it takes the final name
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    return target


def one_tile_projector(path: str | os.PathLike[str], folder: Path | None = None) -> Path:
    """The projector to use for one tile a frame: ``path`` itself when it is not a tiling
    (Idefics3-family) projector or already shows one tile; otherwise a copy with the longest
    edge set to the tile size, made once in ``folder`` (the cache's ``projectors`` folder).
    OSError when the copy cannot be written (a full disk); VlmError for a damaged file."""
    path = Path(path)
    info = read_gguf(path)
    kind = str(info.metadata.get("clip.projector_type")
               or info.metadata.get("clip.vision.projector_type", "")).lower()
    tile = int(info.metadata.get("clip.vision.image_size", 0) or 0)
    longest = int(info.metadata.get(PREPROC_KEY, 0) or 0)
    if kind not in TILED_PROJECTORS or tile <= 0 or longest == tile:
        return path
    folder = folder or cache_dir() / "projectors"
    target = folder / f"{path.stem}.one-tile-{content_key(path)[:16]}.gguf"
    if target.is_file():
        if target.stat().st_size == copy_size(path, PREPROC_KEY, tile):
            return target
        log.warning("the one-tile copy %s is damaged (its size is wrong); writing it again",
                    target)
    log.info("writing a one-tile copy of %s (longest edge %s -> %s) to %s", path.name,
             longest or "unset", tile, target)
    return write_with_setting(path, target, PREPROC_KEY, tile)
