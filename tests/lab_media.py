"""Media and fixtures the model lab's tests share: a described film of coloured shots, its
dataset, and a trainable tiny model with four examples to learn."""

from __future__ import annotations

import subprocess
from pathlib import Path

from models.lab.dataset import film_examples, write_dataset
from tests.media import write_vtt
from tests.tiny_vlm import build_tiny_vlm

COLOURS = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}


CUES = [
    (0.2, 1.6, "A person walks across the street and opens a red door.", 2),
    (2.2, 3.8, "Two people sit at a table in a bright kitchen.", 2),
    (4.3, 5.7, "A dog runs along the beach as waves roll in.", 2),
    (6.1, 7.8, "She turns and looks out of the window.", 2),
]


def make_coloured_film(folder: Path, name: str = "film.mp4") -> Path:
    """Eight seconds: two each of red, lime, blue and white, with a tone."""
    inputs = []
    for colour in COLOURS:
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:s=96x64:r=10:d=2"]
    graph = "".join(f"[{i}:v]" for i in range(len(COLOURS))) + \
        f"concat=n={len(COLOURS)}:v=1:a=0,format=yuv420p[v]"
    out = folder / name
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs,
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=8",
                    "-filter_complex", graph, "-map", "[v]", "-map", f"{len(COLOURS)}:a",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-c:a", "aac",
                    "-shortest", str(out)], check=True, capture_output=True, timeout=120)
    return out


def make_film_dataset(folder: Path, frames: int = 1, test_share: float = 0.25) -> Path:
    """A described coloured film written as a dataset folder; returns the folder."""
    film = make_coloured_film(folder)
    track = write_vtt(folder, CUES, name="film.descriptions.vtt")
    items = film_examples(film, track, frames, Path("images"))
    write_dataset(folder / "dataset", items, [film.name], test_share=test_share, seed=0)
    return folder / "dataset"


FIVE_CUES = [
    (0.2, 1.6, "A person walks across the street.", 2),
    (2.2, 3.8, "Two people sit at a table.", 2),
    (4.3, 5.7, "A dog runs along the beach.", 2),
    (6.1, 7.0, "She turns and looks out.", 2),
    (7.2, 7.9, "He closes the book.", 2),
]


def build_trainable_tiny_vlm(folder: Path) -> Path:
    """The tiny random model with an output layer 30 times larger: a trained model's output
    layer has weights far from the random start's tiny ones, and without that no adapter can
    move its answers (the logits stay within about one unit)."""
    import torch
    from transformers import Idefics3ForConditionalGeneration

    build_tiny_vlm(folder)
    model = Idefics3ForConditionalGeneration.from_pretrained(folder)
    with torch.no_grad():
        model.lm_head.weight.mul_(30.0)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


