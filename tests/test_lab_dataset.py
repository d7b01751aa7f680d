"""Lab datasets from a generated described film and a COCO caption file: the frames are the ones
shown at the cues, the folder loads in the Hugging Face datasets library with its splits, and a
damaged folder is named in one sentence."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.lab import LabError
from models.lab.dataset import (
    coco_examples,
    film_examples,
    load_examples,
    read_info,
    write_dataset,
)
from tests.lab_media import COLOURS, CUES, make_coloured_film, make_film_dataset
from tests.media import make_speech, write_vtt


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dialogue detection keeps its results in the cache folder: this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))






def _colour(image: np.ndarray) -> str:
    mean = image.reshape(-1, 3).mean(axis=0)
    return min(COLOURS, key=lambda c: float(np.abs(mean - np.array(COLOURS[c])).sum()))


def test_film_dataset_has_the_frames_words_pauses_and_context(tmp_path: Path) -> None:
    folder = make_film_dataset(tmp_path, frames=2)
    info = read_info(folder)
    assert info.counts == {"train": 3, "test": 1}
    assert info.frames_per_example == 2
    examples = sorted(load_examples(folder, "train") + load_examples(folder, "test"),
                      key=lambda e: e.start)
    assert [e.text for e in examples] == [c[2] for c in CUES]
    assert [e.pause for e in examples] == pytest.approx([c[1] - c[0] for c in CUES])
    for n, (example, colour) in enumerate(zip(examples, COLOURS, strict=True)):
        assert len(example.frames) == 2
        assert [_colour(example.image(k)) for k in range(2)] == [colour, colour]
        assert example.context == tuple(c[2] for c in CUES[max(0, n - 3):n])


def test_the_folder_loads_in_hugging_face_datasets_with_its_splits(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = make_film_dataset(tmp_path)
    loaded = datasets.load_dataset("imagefolder", data_dir=str(folder))
    assert sorted(loaded) == ["test", "train"]
    assert loaded["train"].num_rows == 3 and loaded["test"].num_rows == 1
    row = loaded["test"][0]
    assert row["references"][0] in [c[2] for c in CUES]
    assert _colour(np.asarray(row["image"].convert("RGB"))) in COLOURS
    assert isinstance(row["context"], list) and row["pause"] > 1


def test_coco_captions(tmp_path: Path) -> None:
    from PIL import Image

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for n, colour in enumerate(("red", "blue", "lime"), start=1):
        Image.new("RGB", (40, 30), COLOURS[colour]).save(pictures / f"{n}.png")
    annotations = tmp_path / "captions.json"
    annotations.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "1.png"}, {"id": 2, "file_name": "2.png"},
                   {"id": 3, "file_name": "3.png"}],
        "annotations": [{"image_id": 1, "caption": "A red wall."},
                        {"image_id": 1, "caption": "Red paint."},
                        {"image_id": 2, "caption": "A blue sky."}]}))
    items = coco_examples(annotations, pictures, Path("images"))
    assert [e.references for e, _ in items] == [("A red wall.", "Red paint."), ("A blue sky.",)]
    write_dataset(tmp_path / "ds", items, ["captions.json"], test_share=0.5)
    loaded = load_examples(tmp_path / "ds", "train") + load_examples(tmp_path / "ds", "test")
    by_id = {e.id: e for e in loaded}
    assert _colour(by_id["coco-1"].image()) == "red" and _colour(by_id["coco-2"].image()) == "blue"
    assert by_id["coco-1"].context == () and by_id["coco-1"].pause > 0

    annotations.write_text('{"images": [{"id": 1}]}')
    with pytest.raises(LabError, match="is not a COCO caption file"):
        coco_examples(annotations, pictures, Path("images"))


def test_damaged_and_wrong_input_is_named(tmp_path: Path) -> None:
    folder = make_film_dataset(tmp_path)
    with pytest.raises(LabError, match="already holds a dataset"):
        write_dataset(folder, [(load_examples(folder)[0], [])], [])
    meta = folder / "train" / "metadata.jsonl"
    lines = meta.read_text().splitlines()

    meta.write_text("\n".join([lines[0], lines[1][:40], lines[2]]) + "\n")
    with pytest.raises(LabError, match=r"damaged: line 2 of train/metadata.jsonl is not a whole"):
        load_examples(folder, "train")

    meta.write_text("\n".join(lines) + "\n")
    frame = Path(json.loads(lines[2])["frames"][0])
    (folder / "train" / frame).unlink()
    with pytest.raises(LabError, match=rf"the frame train/{frame} named on line 3 .* missing"):
        load_examples(folder, "train")

    (folder / "test" / "metadata.jsonl").unlink()
    with pytest.raises(LabError, match="test/metadata.jsonl is missing"):
        load_examples(folder, "test")
    (folder / "dataset.json").write_text("{not json")
    with pytest.raises(LabError, match="dataset.json cannot be read"):
        load_examples(folder, "train")
    (folder / "dataset.json").unlink()
    with pytest.raises(LabError, match="is not a lab dataset"):
        load_examples(folder)
    with pytest.raises(LabError, match="does not exist"):
        load_examples(tmp_path / "nowhere")

    empty = write_vtt(tmp_path, [], name="empty.vtt")
    with pytest.raises(LabError, match="has no description cues"):
        film_examples(tmp_path / "film.mp4", empty, 1, Path("images"))


def test_cli_makes_a_dataset_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from player.cli.main import main

    film = make_coloured_film(tmp_path)
    write_vtt(tmp_path, CUES, name="film.descriptions.vtt")
    assert main(["lab", "dataset", str(tmp_path / "ds"), str(film)]) == 0
    out = capsys.readouterr().out
    assert "3 training and 1 test examples" in out
    lonely = make_coloured_film(tmp_path, "lonely.mp4")
    assert main(["lab", "dataset", str(tmp_path / "ds2"), str(lonely)]) == 1
    err = capsys.readouterr().err
    assert "lonely.mp4 has no description track beside it" in err
    assert main(["lab", "dataset", str(tmp_path / "ds"), str(film)]) == 1
    assert "already holds a dataset" in capsys.readouterr().err


def test_pauses_from_the_dialogue(tmp_path: Path) -> None:
    """A film with a sentence spoken from 2 s: a cue before it has until the speech to talk, a
    cue during it only its own length, a cue after it the rest of the film."""
    film = make_coloured_film(tmp_path, "silent.mp4")
    speech = make_speech(tmp_path, "Hello there. How are you today?")
    talking = tmp_path / "talking.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(film),
                    "-i", str(speech), "-filter_complex",
                    "[1:a]adelay=2000|2000,apad=whole_dur=8[a]", "-map", "0:v", "-map", "[a]",
                    "-c:v", "copy", "-c:a", "aac", "-t", "8", str(talking)],
                   check=True, capture_output=True, timeout=120)
    track = write_vtt(tmp_path, CUES[:3], name="talking.vtt")
    said: list[str] = []
    items = film_examples(talking, track, 1, Path("images"), said.append, pauses="dialogue")
    before, during, after = (e.pause for e, _ in items)
    assert 1.2 < before < 1.8  # 0.2 s until the speech at 2 s, less the padding
    assert during == pytest.approx(CUES[1][1] - CUES[1][0])
    assert after == pytest.approx(8.0 - CUES[2][0], abs=0.1)
    heard: list[tuple[int, int]] = []
    cue_lengths = [e.pause for e, _ in film_examples(talking, track, 1, Path("images"),
                                                     progress=lambda *p: heard.append(p))]
    assert heard == [(1, 3), (2, 3), (3, 3)]
    assert cue_lengths == pytest.approx([c[1] - c[0] for c in CUES[:3]])


def test_an_interrupted_write_leaves_no_dataset(tmp_path: Path) -> None:
    film = make_coloured_film(tmp_path)
    track = write_vtt(tmp_path, CUES, name="film.descriptions.vtt")
    items = film_examples(film, track, 1, Path("images"))

    def stop(done: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "ds", items, ["film"], progress=stop)
    assert not (tmp_path / "ds").exists() and not (tmp_path / ".ds.partial").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(LabError, match="exists and is not an empty folder"):
        write_dataset(tmp_path / "busy", items, ["film"])
    info = write_dataset(tmp_path / "ds", items, ["film"])
    assert sum(info.counts.values()) == 4 and len(load_examples(tmp_path / "ds", "train")) == 3
