"""The vision-language model layer: prompts, cleaning, sentence streaming and the transformers
engine on a tiny random-weight Idefics3 (SmolVLM architecture) model built locally."""

from __future__ import annotations

import time

import numpy as np
import pytest

from models.vlm import VlmError, VlmRequest, ask_prompt, clean, describe_prompt, first_sentence, hf
from models.vlm.prompts import word_budget


# ----- clean() ---------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, spoken", [
    ("The image shows a man walking a dog in a park.", "A man walking a dog in a park."),
    ("In this image, a woman sits at a desk.", "A woman sits at a desk."),
    ("This is a picture of a busy street at night.", "A busy street at night."),
    ("I can see two people in a kitchen.", "Two people in a kitchen."),
    ("Here is a description of the image: A car drives down a road.", "A car drives down a road."),
    ("Sure! Here's what I see: - A red bus stops.\n- People get on.", "A red bus stops. People get on."),
    ('"A cat sleeps on a sofa."', "A cat sleeps on a sofa."),
    ("**A person** stands by a `window`", "A person stands by a window."),
    ("A woman sits at a desk. She appears to be happy.", "A woman sits at a desk."),
    ("The driver seems angry.", ""),
    ("A car stops, and the driver seems angry.", "A car stops."),
    ("A person stands near a window, who looks like a famous actor.",
     "A person stands near a window."),
    ("A man, possibly Tom Cruise, runs across a rooftop.", "A man runs across a rooftop."),
    ("A woman with a sad expression reads a letter.", "A woman reads a letter."),
    ("A child, looking very excited, opens a present.", "A child opens a present."),
    ("He smiles happily at the camera.", "He smiles at the camera."),
    ("A person named Anna waves.", "A person waves."),
    ("Two people talk while one of them looks nervous.", "Two people talk."),
    ("A man, who resembles a politician, gives a speech.", "A man gives a speech."),
    ("A possibly broken chair stands in the corner.", "A possibly broken chair stands in the corner."),
    # Emotions in front of a person: the adjective goes, the article follows the next word.
    ("An angry man slams the door.", "A man slams the door."),
    ("A happy child builds a sandcastle.", "A child builds a sandcastle."),
    ("Two very excited children run along the beach.", "Two children run along the beach."),
    ("A happy elderly man waves.", "An elderly man waves."),
    ("A nervous-looking woman waits by the phone.", "A woman waits by the phone."),
    # Jobs and relationships guessed from looks.
    ("A man, probably a police officer, stands by the car.", "A man stands by the car."),
    ("A man who is probably a police officer stands by the car.", "A man stands by the car."),
    ("A woman, likely a nurse, pushes a trolley.", "A woman pushes a trolley."),
    ("A woman who appears to be a doctor examines a patient.", "A woman examines a patient."),
    ("A woman hugs a boy. She might be his mother.", "A woman hugs a boy."),
    ("A woman hugs a boy who might be her son.", "A woman hugs a boy."),
    ("A police officer directs traffic.", "A police officer directs traffic."),  # seen: kept
    # A role word that is not the person: what a thing looks like is seen, and kept.
    ("A man wears a jacket that looks like a police uniform.",
     "A man wears a jacket that looks like a police uniform."),
    ("The room looks like a doctor's office.", "The room looks like a doctor's office."),
    # On-screen text is read as it is, capitals and all.
    ("A banner reads Happy Mother's Day.", "A banner reads Happy Mother's Day."),
    ("Angry men shout at a bus.", "Men shout at a bus."),
    # Names.
    ("A man runs across a roof. This looks like Tom Cruise.", "A man runs across a roof."),
    ("A man who looks like Tom Cruise runs across a roof.", "A man runs across a roof."),
    # Hedges: dropped, and what they hedged must not then be a guess stated as fact.
    ("It appears that a man is running down the street.", "A man is running down the street."),
    ("I think a car is parked outside.", "A car is parked outside."),
    ("A man, I think, waits at the bus stop.", "A man waits at the bus stop."),
    ("I think she is his mother.", ""),
    ("It looks like Tom Cruise.", ""),
    ("A logo flashes and it appears on the screen.",
     "A logo flashes and it appears on the screen."),
    # Age: only the guess goes, the action stays.
    ("The image shows a man who appears to be in his forties sitting at a desk.",
     "A man sitting at a desk."),
    ("A man in his forties sits at a desk.", "A man sits at a desk."),
    ("An 80-year-old woman knits.", "A woman knits."),
    ("The car is 20 years old.", "The car is 20 years old."),
    ("a dog runs along the beach", "A dog runs along the beach."),
    ("A door opens:", "A door opens."),
    ("", ""),
])
def test_clean_examples(raw: str, spoken: str) -> None:
    assert clean(raw) == spoken


@pytest.mark.parametrize("raw, limit, spoken", [
    ("A person opens the door. A dog runs out into the rain.", 6, "A person opens the door."),
    ("A busy street at night, with neon signs and many cars passing by.", 6,
     "A busy street at night."),
    ("A long train crosses a wide river under a grey sky full of birds.", 5,
     "A long train crosses."),
    ("Short.", 5, "Short."),
])
def test_clean_cuts_to_word_budget(raw: str, limit: int, spoken: str) -> None:
    out = clean(raw, max_words=limit)
    assert out == spoken
    assert len(out.split()) <= limit and out.endswith(".")


def test_clean_keeps_tense_and_ends_with_stop() -> None:
    assert clean("The first person walks to the car and opens it") == (
        "The first person walks to the car and opens it.")
    assert clean("What is that?") == "What is that?"


# ----- first_sentence() ------------------------------------------------------------------------
def test_first_sentence_yields_each_sentence_when_complete() -> None:
    seen: list[tuple[int, str]] = []
    pieces = ["A per", "son walks in", ". Mr. Smith's", " dog follows", ". Then", " it sits"]

    def fed():
        for i, p in enumerate(pieces):
            seen.append((i, "fed"))
            yield p

    out = []
    for s in first_sentence(fed()):
        out.append((len(seen) - 1, s))
    assert [s for _, s in out] == ["A person walks in.", "Mr. Smith's dog follows.", "Then it sits"]
    assert out[0][0] == 2  # spoken as soon as the space after the full stop arrived
    assert out[1][0] == 4
    assert list(first_sentence(["3.5 metres. ", "Ok"])) == ["3.5 metres.", "Ok"]


def test_first_sentence_no_ends_a_sentence_unless_a_number_follows() -> None:
    assert list(first_sentence(["The answer is no. A man enters. ", "He sits"])) == [
        "The answer is no.", "A man enters.", "He sits"]
    # "No." before a number is an abbreviation, even when the number comes in the next piece.
    assert list(first_sentence(["Room No. ", "5 is open. A man", " sits."])) == [
        "Room No. 5 is open.", "A man sits."]
    seen = []
    for s in first_sentence(["The answer is no. ", "A man", " enters."]):
        seen.append(s)
    assert seen == ["The answer is no.", "A man enters."]
    assert list(first_sentence(["No. ", "No. 7 wins."])) == ["No.", "No. 7 wins."]


# ----- prompts ---------------------------------------------------------------------------------
def test_describe_prompt_has_budget_perception_and_recent() -> None:
    assert word_budget(4.0, 2) == 10 and word_budget(0.5, 2) == 3 and word_budget(60, 1) == 10
    assert word_budget(60, 3) == 35
    p = describe_prompt(4.0, 2, "two people, the first person standing on the left",
                        ["A person enters.", "The first person sits down."])
    assert "at most 10 words" in p
    assert "the first person standing on the left" in p
    assert '"A person enters."' in p and '"The first person sits down."' in p
    assert "do not repeat" in p.lower() and "present tense" in p
    assert "one short sentence" in p
    assert "jobs or relationships" in p and "do not hedge" in p  # what clean() removes
    long = describe_prompt(10.0, 3, "", [])
    assert "at most 25 words" in long and "one or two" in long and "Already said" not in long
    q = ask_prompt("What colour is the car?", "a car", ["A car stops."])
    assert "What colour is the car?" in q and '"A car stops."' in q
    with pytest.raises(ValueError):
        ask_prompt("  ")


def test_request_checks_its_image() -> None:
    with pytest.raises(ValueError, match="RGB"):
        VlmRequest(np.zeros((8, 8), np.uint8), "x")
    with pytest.raises(ValueError, match="uint8"):
        VlmRequest(np.zeros((8, 8, 3), np.float32), "x")


# ----- refusals --------------------------------------------------------------------------------
def test_missing_folder_is_refused(tmp_path) -> None:
    engine = hf.HfVlm(tmp_path / "nowhere", device="cpu")
    assert str(tmp_path / "nowhere") in engine.problem()
    with pytest.raises(VlmError, match="nowhere"):
        engine.load()


def test_pickle_checkpoint_is_refused(tmp_path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "idefics3"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    engine = hf.HfVlm(tmp_path, device="cpu")
    assert "unsafe pickle checkpoint refused" in engine.problem().lower()
    with pytest.raises(VlmError, match="(?i)unsafe pickle checkpoint refused; use safetensors"):
        engine.load()


def test_corrupt_config_names_the_path(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(VlmError, match=str(tmp_path)):
        hf.HfVlm(tmp_path, device="cpu").load()


def test_memory_check(tmp_path, monkeypatch) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "idefics3", "dtype": "bfloat16"}')
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1000)
    assert hf.estimate_bytes(tmp_path, "float32") == 2500  # bf16 on disk doubles, 25% overhead
    assert hf.estimate_bytes(tmp_path, "bfloat16") == 1250
    assert hf.estimate_bytes(tmp_path, "bfloat16", "4bit") == 312
    monkeypatch.setattr(hf, "available_memory", lambda device: 2000)
    with pytest.raises(VlmError, match="needs about .* GiB but only .* GiB of RAM"):
        hf.check_fits(tmp_path, "cpu", "float32")
    hf.check_fits(tmp_path, "cpu", "bfloat16")
    with pytest.raises(VlmError, match="GiB of RAM is free"):
        hf.HfVlm(tmp_path, device="cpu").load()


def test_real_available_memory_is_plausible() -> None:
    free = hf.available_memory("cpu")
    assert free is None or free > 2**20


def test_quantize_must_be_8bit_or_4bit(tmp_path) -> None:
    with pytest.raises(ValueError):
        hf.HfVlm(tmp_path, quantize="2bit")


# ----- the tiny model end to end ---------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"))


@pytest.fixture(scope="module")
def engine(tiny_model):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    e = hf.HfVlm(tiny_model, device="auto")
    assert e.problem() == ""
    e.load()
    yield e
    e.close()
    mp.undo()


def frame() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)


def test_tiny_model_is_safetensors_only(tiny_model) -> None:
    names = {p.name for p in tiny_model.iterdir()}
    assert "model.safetensors" in names and not any(n.endswith(".bin") for n in names)


def test_stream_and_describe(engine, monkeypatch) -> None:
    assert engine.device == "cpu" and engine.dtype == "float32"
    request = VlmRequest(frame(), describe_prompt(4.0, 2, "one person", []), max_new_tokens=12)
    new_tokens = []
    real = engine._generate

    def counting(**kwargs):
        out = real(**kwargs)
        new_tokens.append(out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    monkeypatch.setattr(engine, "_generate", counting)
    pieces = list(engine.stream(request))
    assert pieces and all(isinstance(p, str) for p in pieces) and "".join(pieces).strip()
    assert 0 < new_tokens[0] <= 12
    start = time.perf_counter()
    text = engine.describe(request)
    elapsed = time.perf_counter() - start
    assert text and text.strip() == text and text[-1] in ".!?"
    assert elapsed < 10


def test_stream_can_be_abandoned(engine) -> None:
    request = VlmRequest(frame(), "Describe.", max_new_tokens=40)
    gen = engine.stream(request)
    next(gen)
    gen.close()  # stops generation and joins the thread
    assert engine.describe(VlmRequest(frame(), "Describe.", max_new_tokens=4))


def test_out_of_memory_falls_back_to_cpu_once(engine, monkeypatch) -> None:
    class OutOfMemoryError(RuntimeError):
        pass

    calls = []
    real = engine._generate

    def flaky(**kwargs):
        calls.append(engine.device)
        if len(calls) == 1:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(**kwargs)

    monkeypatch.setattr(engine, "_generate", flaky)
    monkeypatch.setattr(engine, "device", "cuda:0")  # as if it had been loaded on a GPU
    monkeypatch.setattr(engine, "notes", [])
    text = engine.describe(VlmRequest(frame(), "Describe.", max_new_tokens=4))
    assert text and calls == ["cuda:0", "cpu"]
    assert engine.device == "cpu" and "ran out of memory" in engine.notes[0]


def test_other_generate_errors_become_vlm_errors(engine, monkeypatch) -> None:
    def broken(**kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(engine, "_generate", broken)
    with pytest.raises(VlmError, match="shape mismatch"):
        engine.describe(VlmRequest(frame(), "Describe.", max_new_tokens=4))
