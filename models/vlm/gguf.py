"""Reading a GGUF file's header: its metadata (architecture, name, tensor count) without loading
any weights. A leaf module: the llama.cpp engine, the projector cutter and the quantizer use it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from models.vlm.base import VlmError

GGUF_MAGIC = b"GGUF"


# ----- reading GGUF metadata ---------------------------------------------------------------------
@dataclass(frozen=True)
class GgufInfo:
    """The header of a GGUF file: its format version, tensor count and metadata.

    Long arrays (the tokenizer's vocabulary and merges) are skipped; only their length is kept.
    """

    path: Path
    version: int
    tensor_count: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))


# GGUF value types: id -> struct format (scalars); 8 is a string, 9 an array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_KEEP_ARRAY = 64
"""Arrays longer than this are skipped, not read."""
_MAX_STRING = 1 << 26
_MAX_COUNT = 1 << 32


class _Corrupt(Exception):
    pass


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Corrupt("the file ends too early")
    return data


def _unpack(f: BinaryIO, fmt: str) -> Any:
    return struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]


def _string(f: BinaryIO) -> str:
    n = _unpack(f, "<Q")
    if n > _MAX_STRING:
        raise _Corrupt(f"a string claims to be {n} bytes long")
    return _read(f, n).decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _unpack(f, _SCALARS[kind])
    if kind == _STRING:
        return _string(f)
    if kind != _ARRAY:
        raise _Corrupt(f"unknown value type {kind}")
    item, count = _unpack(f, "<I"), _unpack(f, "<Q")
    if count > _MAX_COUNT:
        raise _Corrupt(f"an array claims {count} items")
    if count <= _KEEP_ARRAY:
        return [_value(f, item) for _ in range(count)]
    if item in _SCALARS:  # skip the numbers without reading them
        f.seek(struct.calcsize(_SCALARS[item]) * count, 1)
    else:
        for _ in range(count):
            _value(f, item)
    return f"<array of {count}>"


def read_gguf(path: str | Path) -> GgufInfo:
    """The metadata of the GGUF file at ``path``; VlmError naming the file when it is not one."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            magic = f.read(4)
            if magic != GGUF_MAGIC:
                raise _Corrupt(f"it does not start with GGUF (starts with {magic!r})")
            version = _unpack(f, "<I")
            if version not in (2, 3):
                raise _Corrupt(f"unsupported GGUF version {version}")
            tensors, count = _unpack(f, "<Q"), _unpack(f, "<Q")
            if count > 100_000 or tensors > 1_000_000:
                raise _Corrupt(f"the header claims {tensors} tensors and {count} keys")
            metadata = {}
            for _ in range(count):
                key = _string(f)
                metadata[key] = _value(f, _unpack(f, "<I"))
                if f.tell() > size:
                    raise _Corrupt("the file ends too early")
    except OSError as exc:
        raise VlmError(f"The model file {path} cannot be read: {exc}") from exc
    except (_Corrupt, struct.error) as exc:
        raise VlmError(f"The model file {path} is not a valid GGUF file ({exc}); it may be "
                       f"corrupt or only partly downloaded. Download it again.") from exc
    return GgufInfo(path, version, tensors, metadata)


# ----- finding files and checking memory ---------------------------------------------------------
