"""Generate short product-inspection notes labeled OK (acceptable) or NG (defective).

Deterministic for a seed. Besides clear OK and NG notes it makes *ambiguous* notes (a minor
flaw on an acceptable unit, or a defect described mildly) whose label depends on the wording,
and flips a fraction of labels (annotator noise), so a model cannot reach 100 % and choosing
which items to label matters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEMO_LABELS = ("OK", "NG")
# What the demo's labels mean: pre-labeling by similarity (before any model) starts from these.
DEMO_LABEL_DESCRIPTIONS = {
    "OK": "works as expected, in good condition, passes every check, no defects, ready to ship",
    "NG": "defective, broken, damaged, cracked, fails, does not work, unsafe, leaks, overheats",
}

PRODUCTS = [
    "phone case",
    "USB cable",
    "coffee grinder",
    "desk lamp",
    "bluetooth speaker",
    "kettle",
    "keyboard",
    "mouse",
    "power bank",
    "headphones",
    "monitor stand",
    "water bottle",
    "backpack",
    "wall charger",
    "smart plug",
    "webcam",
    "laptop sleeve",
    "tripod",
    "router",
    "space heater",
    "blender",
    "toaster",
    "hair dryer",
    "electric toothbrush",
    "fitness tracker",
    "gaming controller",
    "camera strap",
    "drill",
]
OK_PHRASES = [
    "works exactly as described",
    "passed every functional check",
    "arrived intact and fully working",
    "looks clean with no visible marks",
    "powers on and performs normally",
    "fits and finishes are correct",
    "all buttons respond as expected",
    "packaging and unit are in good condition",
    "meets the specification",
    "runs quietly and stays cool",
    "battery holds a full charge",
    "firmware boots without errors",
    "seams and joints are solid",
    "connects on the first try",
    "labels and serial number are correct",
]
NG_PHRASES = [
    "does not power on",
    "has a cracked housing",
    "stops working after a few minutes",
    "smells of burnt plastic",
    "arrived with a broken connector",
    "shows a dead pixel cluster",
    "overheats during normal use",
    "has a loose internal part that rattles",
    "fails the safety test",
    "leaks when filled",
    "battery swells after charging",
    "button is stuck and unresponsive",
    "sparks when plugged in",
    "has missing screws and a bent frame",
    "drops the connection constantly",
]
MINOR_FLAWS = [
    "a light scratch on the back",
    "slightly scuffed packaging",
    "a faint smudge near the logo",
    "a small dent in the box",
    "a loose thread on the strap",
    "a barely visible mark on the base",
]
MILD_DEFECTS = [
    "occasionally flickers",
    "sometimes fails to pair",
    "gets rather warm",
    "has a wobbly hinge",
    "makes a faint buzzing noise",
    "charges more slowly than it should",
]
OPENERS = ["Inspection note:", "QA check:", "Customer report:", "Line 3 audit:", "Returned unit:", "Sample test:", ""]
CLOSERS = [
    "",
    "Ready to ship.",
    "Logged by the night shift.",
    "Photo attached.",
    "Second check done.",
    "Batch {batch}.",
    "Ticket {batch}.",
]


@dataclass(frozen=True)
class DemoText:
    text: str
    label: str  # the (possibly noisy) annotator label
    true_label: str  # the label before noise
    ambiguous: bool


def _sentence(rng: random.Random, body: str) -> str:
    opener = rng.choice(OPENERS)
    closer = rng.choice(CLOSERS).format(batch=rng.randint(100, 99999))
    return " ".join(part for part in (opener, body, closer) if part)


def generate_demo_texts(n: int = 100, *, seed: int = 0, noise: float = 0.05, ambiguous: float = 0.2) -> list[DemoText]:
    """``n`` distinct labeled notes; ``ambiguous`` and ``noise`` are fractions of ``n``."""
    rng = random.Random(seed)
    out: list[DemoText] = []
    seen: set[str] = set()
    while len(out) < n:
        product = rng.choice(PRODUCTS)
        roll = rng.random()
        if roll < ambiguous:
            is_ambiguous = True
            if rng.random() < 0.5:
                true = "OK"
                body = f"The {product} {rng.choice(OK_PHRASES)}, though it has {rng.choice(MINOR_FLAWS)}."
            else:
                true = "NG"
                body = f"The {product} mostly works but {rng.choice(MILD_DEFECTS)}."
        else:
            is_ambiguous = False
            true = "OK" if rng.random() < 0.55 else "NG"
            phrase = rng.choice(OK_PHRASES if true == "OK" else NG_PHRASES)
            body = f"The {product} {phrase}."
        text = _sentence(rng, body)
        if text in seen:
            continue
        seen.add(text)
        label = true
        if rng.random() < noise:
            label = "NG" if true == "OK" else "OK"
        out.append(DemoText(text=text, label=label, true_label=true, ambiguous=is_ambiguous))
    return out
