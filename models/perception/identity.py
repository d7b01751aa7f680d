"""Who is who across a video: appearance signatures and a gallery of the people seen so far.

The tracker (:mod:`models.perception.tracking`) follows a person from frame to frame by where
their box is, so it loses them when they leave the picture or at a shot change, and after a cut
it may even hand one person's track to someone else standing in the same place. This module
gives each person a *stable* id that survives both: every tracked person carries a small
appearance signature, and a gallery keeps one signature per person seen in this video.

The signature is made of colour histograms of up to three body parts, cut out using the pose
landmarks: the torso (clothes, the most telling part), the legs (trousers, skirt) and the top of
the head (hair, hat); a face seen without a body gives the chest below the chin and the top of
the head instead. Each part is a 29-bin histogram in HSV space: 12 hue bins times 2 brightness
halves for coloured pixels and 5 brightness bins for grey ones (black to white). A pixel counts
as coloured in proportion to its saturation and brightness (soft ramps, not hard limits, so dark
navy does not flip between "blue" and "black" as the light changes), and the bins are smoothed
into their neighbours. Two signatures compare by the Bhattacharyya coefficient of each part both
have (1 the same, 0 nothing in common), weighted torso 1, legs 0.5, head 0.6. No white balance
is applied: a grey-world correction was tried and made the same person in front of a beige and a
blue wall look like two people, which is worse than the shifts in light it corrects.

One signature costs about 0.2 ms per person on the project's 2-core CPU (see
``tests/test_identity.py``, which measures it); the cut check the stages run with it costs about
0.6 ms per frame.

Matching rules (the numbers are in :class:`IdentityOptions`). On the test pictures (the demo
film's man in the car and cyclist, and a portrait of Grace Hopper, under brighter, dimmer and
slightly tinted light, in front of other backgrounds and at other sizes) the same person scores
0.92 or more against their first sighting, and different people 0.77 or less, so:

- ``match`` 0.85: a new track takes a known person's id back at this similarity or more, and
  only when it beats the next best candidate by ``margin`` 0.04 (two people dressed alike are
  then a new person rather than a guess). People seen in the same frame are never candidates for
  each other.
- ``split`` 0.70: a continuing track whose appearance falls below this against its own person
  (someone else now standing where they stood) is identified afresh.
- People unseen for ``forget_after`` (300 s of media time) are forgotten, and the gallery holds
  at most ``max_people`` (24; the least recently seen go first).

The stages also end every track at a cut (see :func:`models.perception.faces.follows_on`), so
after a cut appearance alone decides who is who.

This is colour, not a face: two people dressed alike (black against near-black) can be taken
for one, one person who changes clothes becomes two, and strong changes of colour grading
between scenes can make one person two. It never names anyone.

The torso's histogram also gives a plain word for the colour of someone's clothes
(:func:`clothing_colour`: "red", "black"...) when one colour clearly dominates, so the
narration can say "the person in red" instead of a number a listener cannot hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

# BlazePose landmark indices, as in pose.py (kept here so this module needs no mediapipe).
_NOSE, _L_EAR, _R_EAR = 0, 7, 8
_L_SHOULDER, _R_SHOULDER = 11, 12
_L_HIP, _R_HIP = 23, 24
_L_KNEE, _R_KNEE = 25, 26

PARTS = ("torso", "legs", "head")
WEIGHTS = np.array([1.0, 0.5, 0.6])
HUE_BINS, VALUE_BINS, GREY_BINS = 12, 2, 5
SATURATION_RAMP, VALUE_RAMP = (60, 120), (15, 45)
"""A pixel counts as coloured in proportion to where its saturation and brightness (0..255) lie
on these ramps, and as grey for the rest."""
BRIGHT = 150
"""Coloured pixels at least this bright go to the light half of their hue bin."""
BINS = HUE_BINS * VALUE_BINS + GREY_BINS
MIN_PIXELS = 30
"""A part with fewer usable pixels than this is left out of the signature."""
SAMPLE_PIXELS = 600
"""Parts larger than this are sampled on a grid down to about this many pixels."""

Region = tuple[int, int, int, int]
"""x0, y0, x1, y1 in pixels."""


@dataclass(frozen=True)
class Signature:
    """One person's appearance: a normalised histogram per body part (a row of zeros and
    ``present`` False for a part that was not visible)."""

    hists: np.ndarray = field(compare=False)  # (len(PARTS), BINS), rows sum to 1 or 0
    present: tuple[bool, ...]

    @property
    def usable(self) -> bool:
        return any(self.present)


# ---------------------------------------------------------------------------------------------
# Body parts from landmarks


def _seen(lm: np.ndarray, *idx: int, vis: float = 0.5) -> bool:
    return bool(np.all(lm[list(idx), 2] >= vis))


def _clip(region: tuple[float, float, float, float], w: int, h: int) -> Region | None:
    x0, y0 = max(0, int(round(region[0]))), max(0, int(round(region[1])))
    x1, y1 = min(w, int(round(region[2]))), min(h, int(round(region[3])))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    return x0, y0, x1, y1


def body_regions(landmarks: np.ndarray | None, box: Sequence[float], width: int,
                 height: int) -> dict[str, Region]:
    """Pixel regions of the torso, legs and head of one person, from pose landmarks ((33, 3):
    x, y in pixels and visibility) or, without them, from the person's pixel box alone.

    Each region keeps to the inside of the body (the middle of the shoulders' span, say) so
    that little of the background gets in. Parts that cannot be placed are left out.
    """
    out: dict[str, Region] = {}
    if landmarks is None or not _seen(landmarks, _L_SHOULDER, _R_SHOULDER):
        bx0, by0, bx1, by1 = box
        bw, bh = bx1 - bx0, by1 - by0
        torso = _clip((bx0 + 0.3 * bw, by0 + 0.25 * bh, bx1 - 0.3 * bw, by0 + 0.55 * bh),
                      width, height)
        if torso:
            out["torso"] = torso
        return out
    lm = landmarks
    sl, sr = lm[_L_SHOULDER, :2], lm[_R_SHOULDER, :2]
    span = max(float(np.linalg.norm(sl - sr)), 4.0)
    top = float(min(sl[1], sr[1]))
    sx0, sx1 = float(min(sl[0], sr[0])), float(max(sl[0], sr[0]))
    inset = 0.2 * (sx1 - sx0)
    if _seen(lm, _L_HIP, _R_HIP) and float(lm[[_L_HIP, _R_HIP], 1].mean()) > top + 0.4 * span:
        hips = lm[[_L_HIP, _R_HIP], :2]
        bottom = float(hips[:, 1].mean())
        chest_box = (max(sx0, float(hips[:, 0].min())) + inset, top + 0.15 * (bottom - top),
                 min(sx1, float(hips[:, 0].max())) - inset, bottom - 0.05 * (bottom - top))
        if chest_box[2] - chest_box[0] < 0.3 * span:  # a body seen from the side: keep a middle strip
            mid = (sx0 + sx1) / 2
            chest_box = (mid - 0.2 * span, chest_box[1], mid + 0.2 * span, chest_box[3])
    else:  # head and shoulders: the chest below the shoulders
        chest_box = (sx0 + inset, top + 0.2 * span, sx1 - inset, top + 0.9 * span)
    region = _clip(chest_box, width, height)
    if region:
        out["torso"] = region
    if _seen(lm, _L_HIP, _R_HIP, _L_KNEE, _R_KNEE):
        hips, knees = lm[[_L_HIP, _R_HIP], :2], lm[[_L_KNEE, _R_KNEE], :2]
        y0, y1 = float(hips[:, 1].mean()), float(knees[:, 1].mean())
        x0 = float(min(hips[:, 0].min(), knees[:, 0].min()))
        x1 = float(max(hips[:, 0].max(), knees[:, 0].max()))
        if y1 - y0 > 0.3 * span:
            region = _clip((x0, y0 + 0.15 * (y1 - y0), x1, y1 - 0.1 * (y1 - y0)), width, height)
            if region:
                out["legs"] = region
    if _seen(lm, _L_EAR, _R_EAR, _NOSE):
        ears = lm[[_L_EAR, _R_EAR], :2]
        ear_w = max(float(abs(ears[0, 0] - ears[1, 0])), 0.3 * span)
        ey = float(ears[:, 1].mean())
        cx = float(ears[:, 0].mean())
        region = _clip((cx - 0.4 * ear_w, ey - 0.9 * ear_w, cx + 0.4 * ear_w, ey - 0.35 * ear_w),
                       width, height)
        if region:
            out["head"] = region
    return out


def face_regions(face_box: Sequence[float], width: int, height: int) -> dict[str, Region]:
    """Regions for a face seen without a body: the chest below the chin and the top of the
    head, from the face's pixel box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = face_box
    fw, fh = x1 - x0, y1 - y0
    out: dict[str, Region] = {}
    chest = _clip((x0 - 0.1 * fw, y1 + 0.6 * fh, x1 + 0.1 * fw, y1 + 1.6 * fh), width, height)
    if chest:
        out["torso"] = chest
    head = _clip((x0 + 0.15 * fw, y0 - 0.35 * fh, x1 - 0.15 * fw, y0 + 0.05 * fh), width, height)
    if head:
        out["head"] = head
    return out


# ---------------------------------------------------------------------------------------------
# Histograms


def _ramp(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((x - low) / (high - low), 0.0, 1.0)


def _histogram(pixels: np.ndarray) -> np.ndarray | None:
    """The 29-bin colour histogram of (N, 3) RGB uint8 pixels, normalised; None when too few."""
    import cv2  # comes with mediapipe (the perception extra)

    if len(pixels) < MIN_PIXELS:
        return None
    hsv = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    h, s, v = (hsv[:, i].astype(np.int32) for i in range(3))
    # How coloured each pixel is, 0 (grey) to 1, rising with saturation and brightness: a dark
    # or pale pixel's hue is noise, and a hard limit would flip it between bins with the light.
    colour = _ramp(s, *SATURATION_RAMP) * _ramp(v, *VALUE_RAMP)
    hue_index = (h * HUE_BINS) // 180 * VALUE_BINS + (v >= BRIGHT)
    grey_index = np.minimum(v * GREY_BINS // 256, GREY_BINS - 1)
    hue = np.bincount(hue_index, weights=colour, minlength=HUE_BINS * VALUE_BINS)
    grey = np.bincount(grey_index, weights=1.0 - colour, minlength=GREY_BINS)
    # Smooth: a little weight to the neighbouring hue (circular) and grey bins.
    hue = hue.reshape(HUE_BINS, VALUE_BINS)
    hue = 0.6 * hue + 0.2 * np.roll(hue, 1, axis=0) + 0.2 * np.roll(hue, -1, axis=0)
    grey = 0.7 * grey + 0.15 * np.concatenate([grey[1:], [0.0]]) + \
        0.15 * np.concatenate([[0.0], grey[:-1]])
    hist = np.concatenate([hue.ravel(), grey])
    return hist / hist.sum()


def _pixels(rgb: np.ndarray, region: Region) -> np.ndarray:
    """The region's pixels, on a grid of about ``SAMPLE_PIXELS``, as an (N, 3) array."""
    x0, y0, x1, y1 = region
    step = max(1, int(np.sqrt((x1 - x0) * (y1 - y0) / SAMPLE_PIXELS)))
    return np.ascontiguousarray(rgb[y0:y1:step, x0:x1:step]).reshape(-1, 3)


def signature(rgb: np.ndarray, regions: dict[str, Region]) -> Signature:
    """The appearance signature of the ``regions`` (from :func:`body_regions` or
    :func:`face_regions`) of an RGB uint8 frame."""
    hists = np.zeros((len(PARTS), BINS))
    present = []
    for i, part in enumerate(PARTS):
        region = regions.get(part)
        hist = _histogram(_pixels(rgb, region)) if region else None
        if hist is not None:
            hists[i] = hist
        present.append(hist is not None)
    return Signature(hists, tuple(present))


# Colour words for the histogram's bins. Hue bin k covers 30k to 30k + 30 degrees. The bin from
# 30 to 60 degrees holds orange, yellow, brown, khaki and skin alike (and which one depends on
# the light), so it has no word: a top of that colour is not named rather than named wrongly.
_HUE_WORDS = ("red", "", "yellow", "green", "green", "green", "blue", "blue", "blue",
              "purple", "pink", "red")
_GREY_WORDS = ("black", "black", "grey", "grey", "white")
COLOUR_SHARE = 0.5
"""The least share of the torso's histogram one colour word must hold to be said."""
COLOUR_LEAD = 2.0
"""How many times the next colour's share the first one's must be: a striped or two-coloured top
(or one whose hue lies between two words) gets no word rather than a guess."""


def clothing_colour(sig: Signature | None) -> str:
    """A plain colour word for the clothes on the torso ("red", "blue", "black", "white"...),
    or "" when the torso was not seen or no one colour clearly dominates it."""
    if sig is None or not sig.present[0]:
        return ""
    torso = sig.hists[0]
    hue = torso[:HUE_BINS * VALUE_BINS].reshape(HUE_BINS, VALUE_BINS)
    shares: dict[str, float] = {}
    for k, word in enumerate(_HUE_WORDS):
        shares[word] = shares.get(word, 0.0) + float(hue[k].sum())
    for k, word in enumerate(_GREY_WORDS):
        shares[word] = shares.get(word, 0.0) + float(torso[HUE_BINS * VALUE_BINS + k])
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    (word, share), (_, second) = ranked[0], ranked[1]
    if share < COLOUR_SHARE or share < COLOUR_LEAD * second:
        return ""
    return word  # "" when the colour that dominates is one without a word


def similarity(a: Signature, b: Signature) -> float:
    """0..1: the weighted Bhattacharyya coefficient over the parts both signatures have
    (0 when they share none). A signature without its torso counts for at most 0.9."""
    both = np.array([pa and pb for pa, pb in zip(a.present, b.present, strict=True)])
    if not both.any():
        return 0.0
    coeffs = np.sqrt(a.hists[both] * b.hists[both]).sum(axis=1)
    value = float((coeffs * WEIGHTS[both]).sum() / WEIGHTS[both].sum())
    return value if both[0] else 0.9 * value


def blend(old: Signature, new: Signature, weight: float) -> Signature:
    """``old`` moved towards ``new`` by ``weight`` (0..1), part by part; a part only one of them
    has is taken from that one."""
    hists = old.hists.copy()
    present = []
    for i, (po, pn) in enumerate(zip(old.present, new.present, strict=True)):
        if po and pn:
            mixed = (1 - weight) * old.hists[i] + weight * new.hists[i]
            hists[i] = mixed / mixed.sum()
        elif pn:
            hists[i] = new.hists[i]
        present.append(po or pn)
    return Signature(hists, tuple(present))


# ---------------------------------------------------------------------------------------------
# The gallery


@dataclass
class IdentityOptions:
    """Settings for :class:`Identities`.

    ``match``: the least similarity for a new track to take a known person's id back.
    ``margin``: how far the best candidate must beat the second (so two people dressed alike
    are not merged). ``split``: a continuing track below this similarity to its own person is
    identified afresh. ``forget_after``: seconds of media time after which an unseen person is
    forgotten. ``max_people``: the most people remembered.
    """

    match: float = 0.85
    margin: float = 0.04
    split: float = 0.70
    forget_after: float = 300.0
    max_people: int = 24


@dataclass
class KnownPerson:
    """One person of the gallery."""

    id: int
    signature: Signature | None
    first_seen: float
    last_seen: float
    samples: int = 0


@dataclass(frozen=True)
class Assignment:
    """The stable id given to one tracked person in one frame; ``new`` on their first frame."""

    id: int
    new: bool
    similarity: float | None = None
    """How well the track matched the person it was given (None for a new person)."""


class Identities:
    """Turns the tracker's short-lived track ids into stable person ids for one video."""

    def __init__(self, options: IdentityOptions | None = None) -> None:
        self.options = options or IdentityOptions()
        self._people: dict[int, KnownPerson] = {}
        self._links: dict[int, int] = {}  # track id -> person id
        self._together: set[frozenset[int]] = set()  # pairs of people seen in one frame
        self._next_id = 1

    @property
    def people(self) -> tuple[KnownPerson, ...]:
        return tuple(self._people.values())

    def clothing_colour(self, person_id: int) -> str:
        """The colour word for the clothes of a known person (see :func:`clothing_colour`), from
        their signature as gathered over every sighting so far; "" when unknown or unclear."""
        person = self._people.get(person_id)
        return clothing_colour(person.signature) if person is not None else ""

    def reset(self) -> None:
        """Forget everyone: a new video (or a seek); ids start again at 1."""
        self._people.clear()
        self._links.clear()
        self._together.clear()
        self._next_id = 1

    def drop_tracks(self) -> None:
        """Forget which track is whom (the tracker restarted) but remember the people."""
        self._links.clear()

    def assign(self, t: float, tracks: Sequence[tuple[int, Signature | None]],
               live: Iterable[int] | None = None) -> list[Assignment]:
        """Stable ids for this frame's tracked people, given as (track id, signature) in any
        order; one :class:`Assignment` each, in the same order. ``live``: the tracker's live
        track ids (links of other tracks are dropped)."""
        self._forget_unseen(t)
        found = self._continued(tracks)
        taken = {a.id for a in found.values()}
        todo = [i for i in range(len(tracks)) if i not in found]
        found |= self._identify(tracks, todo, taken)
        done = [found[i] for i in range(len(tracks))]
        for (track, sig), a in zip(tracks, done, strict=True):
            self._links[track] = a.id
            self._update(self._people[a.id], sig, t)
        if live is not None:
            keep = set(live) | {track for track, _ in tracks}
            self._links = {k: v for k, v in self._links.items() if k in keep}
        ids = sorted({a.id for a in done})
        self._together |= {frozenset((a, b)) for i, a in enumerate(ids) for b in ids[i + 1:]}
        self._bound(set(ids))
        return done

    def recognise(self, t: float, signatures: Sequence[Signature | None]) -> list[Assignment]:
        """Ids for people seen in one frame apart from the stream (describe now, a frame from
        elsewhere in the film), one per signature, in order: a known person by appearance, by
        the rules for a new track; anyone else joins the gallery as a new person (so the
        stream knows them when it gets there). Tracks, links and the known people's
        signatures are left as they are."""
        tracks = [(-1 - i, sig) for i, sig in enumerate(signatures)]  # never a tracker's id
        found = self._identify(tracks, list(range(len(tracks))), set())
        done = [found[i] for i in range(len(tracks))]
        for sig, a in zip(signatures, done, strict=True):
            if a.new:
                self._update(self._people[a.id], sig, t)
        ids = sorted({a.id for a in done})
        self._together |= {frozenset((a, b)) for i, a in enumerate(ids) for b in ids[i + 1:]}
        self._bound(set(ids))
        return done

    def _continued(self, tracks: Sequence[tuple[int, Signature | None]]) -> dict[int, Assignment]:
        """The tracks that go on as the person they were, by index; a track that now looks
        unlike its person (below ``split``) is left out, to be identified afresh."""
        found: dict[int, Assignment] = {}
        for i, (track, sig) in enumerate(tracks):
            pid = self._links.get(track)
            person = self._people.get(pid) if pid is not None else None
            if person is None or any(a.id == person.id for a in found.values()):
                continue
            sim = None
            if sig is not None and sig.usable and person.signature is not None:
                sim = similarity(sig, person.signature)
            if sim is None or sim >= self.options.split:
                found[i] = Assignment(person.id, False, sim)
        return found

    def _identify(self, tracks: Sequence[tuple[int, Signature | None]], todo: list[int],
                  taken: set[int]) -> dict[int, Assignment]:
        """Known people for the tracks in ``todo`` where one matches well enough, else new."""
        opts = self.options
        scores: dict[int, list[tuple[float, int]]] = {}
        for i in todo:
            sig = tracks[i][1]
            ranked = []
            if sig is not None and sig.usable:
                ranked = sorted(((similarity(sig, p.signature), p.id) for p in
                                 self._people.values()
                                 if p.signature is not None and p.id not in taken), reverse=True)
            scores[i] = ranked
        found: dict[int, Assignment] = {}
        # The most confident matches first, so two tracks cannot take the same person.
        order = sorted(todo, key=lambda i: -(scores[i][0][0] if scores[i] else 0.0))
        for i in order:
            ranked = [(s, pid) for s, pid in scores[i] if pid not in taken]
            if ranked and ranked[0][0] >= opts.match and self._clear_winner(ranked):
                best, pid = ranked[0]
                taken.add(pid)
                found[i] = Assignment(pid, False, best)
                continue
            person = self._new_person()
            taken.add(person.id)
            found[i] = Assignment(person.id, True, None)
        return found

    def _clear_winner(self, ranked: list[tuple[float, int]]) -> bool:
        """Whether the best candidate beats the second by the margin, or the two are one person
        known twice (alike, and never seen in the same frame), so either will do."""
        if len(ranked) < 2 or ranked[0][0] - ranked[1][0] >= self.options.margin:
            return True
        a, b = self._people[ranked[0][1]], self._people[ranked[1][1]]
        if frozenset((a.id, b.id)) in self._together or a.signature is None or \
                b.signature is None:
            return False
        return similarity(a.signature, b.signature) >= self.options.match

    def _new_person(self) -> KnownPerson:
        person = KnownPerson(self._next_id, None, float("nan"), float("nan"))  # times: _update
        self._next_id += 1
        self._people[person.id] = person
        return person

    @staticmethod
    def _update(person: KnownPerson, sig: Signature | None, t: float) -> None:
        if person.samples == 0 and np.isnan(person.first_seen):
            person.first_seen = t
        person.last_seen = t
        if sig is None or not sig.usable:
            return
        person.samples += 1
        if person.signature is None:
            person.signature = sig
        else:
            person.signature = blend(person.signature, sig, max(0.15, 1.0 / person.samples))

    def _forget_unseen(self, t: float) -> None:
        """Forget people unseen for ``forget_after`` seconds (an earlier ``t`` forgets no one)."""
        gone = [p.id for p in self._people.values()
                if t - p.last_seen > self.options.forget_after]
        self._drop(gone)

    def _bound(self, now: set[int]) -> None:
        """Keep at most ``max_people``: the least recently seen go first, never those in view."""
        extra = len(self._people) - self.options.max_people
        if extra > 0:
            old = sorted((p for p in self._people.values() if p.id not in now),
                         key=lambda p: p.last_seen)
            self._drop([p.id for p in old[:extra]])

    def _drop(self, ids: list[int]) -> None:
        for pid in ids:
            del self._people[pid]
        if ids:
            self._links = {k: v for k, v in self._links.items() if v in self._people}
            self._together = {pair for pair in self._together if pair <= self._people.keys()}
