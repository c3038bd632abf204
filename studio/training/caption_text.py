"""Caption text for Studio's text-to-image data: training variants and held-out paraphrases.

Training variants of one subject come from templates ("an emoji of a red apple", "red apple,
clip art"), keyword subsets ("fruit, apple"), the bare name and a small train-only synonym table,
each with the style word of its source, so that a prompt can ask for a style. Evaluation
paraphrases use *other* templates and a *separate* synonym table, so that a paraphrase string is
never a training caption (the pack builder also checks that against the bank). Everything here is
deterministic: the random choices are seeded by the subject, so both emoji styles of one subject
share their style-free captions and the caption bank stays small.
"""

from __future__ import annotations

import hashlib
import random
import re

#: style words, one per kind of picture: a prompt can ask for one of them
STYLE_EMOJI = "emoji"
STYLE_FLAT_EMOJI = "flat emoji"
STYLE_CLIPART = "clip art"
STYLE_PHOTO = "photo cut-out"
STYLE_DRAWING = "drawing"
STYLE_ICON = "flat icon"
UNCOUNTABLE_STYLES = frozenset({STYLE_CLIPART})

# "{a}" is the name with its article ("a red apple"), "{n}" the bare name, "{s}" the style word,
# "{as}" the style word with its article ("an emoji")
TRAIN_TEMPLATES = (
    "{as} of {a}",
    "{n}, {s}",
    "a picture of {a}",
    "{n} {s}",
    "{a}",
    "{s}: {n}",
)
# reserved for evaluation: no training caption starts or ends like these
EVAL_TEMPLATES = (
    "an image showing {a}",
    "artwork depicting {a}",
    "{a}, shown as {as}",
    "a small illustration of {a}",
)

#: train-only word substitutions (whole words, lower case)
TRAIN_SYNONYMS = {
    "woman": "lady",
    "man": "guy",
    "cat": "kitty",
    "car": "automobile",
    "big": "large",
    "small": "little",
    "happy": "cheerful",
    "sad": "unhappy",
    "house": "home",
    "face": "head",
    "person": "someone",
    "child": "kid",
    "rabbit": "bunny",
    "picture": "image",
    "bag": "sack",
    "stone": "rock",
    "road": "street",
    "boat": "ship",
    "bicycle": "bike",
    "airplane": "plane",
    "telephone": "phone",
    "glasses": "spectacles",
    "hat": "cap",
    "gift": "present",
    "sun": "sunshine",
    "angry": "mad",
    "fast": "quick",
    "shop": "store",
}
#: evaluation-only substitutions: none of these targets is a training synonym
EVAL_SYNONYMS = {
    "red": "scarlet",
    "blue": "azure",
    "green": "emerald",
    "yellow": "golden",
    "white": "snowy",
    "black": "jet-black",
    "woman": "female",
    "man": "male",
    "boy": "young lad",
    "girl": "young lass",
    "baby": "infant",
    "old": "elderly",
    "dog": "canine",
    "cat": "feline",
    "flower": "blossom",
    "car": "motorcar",
    "house": "dwelling",
    "happy": "joyful",
    "sad": "sorrowful",
    "big": "huge",
    "small": "tiny",
    "cup": "mug",
    "clock": "timepiece",
    "building": "edifice",
    "airplane": "aircraft",
    "bicycle": "cycle",
    "face": "visage",
    "hand": "palm",
    "heart": "love heart",
    "tree": "sapling",
    "book": "tome",
    "ship": "vessel",
    "shoe": "footwear",
    "fish": "sea fish",
    "bird": "songbird",
    "horse": "steed",
}
COLOURS = frozenset(
    {"red", "orange", "yellow", "green", "blue", "purple", "brown", "black", "white", "grey"}
    | {"pink", "violet", "cyan", "magenta", "indigo", "teal"}
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def seeded_rng(*parts: object) -> random.Random:
    """A random generator seeded by the parts' text (stable across runs and machines)."""
    digest = hashlib.sha1("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def clean(text: str) -> str:
    """One line, single spaces, no surrounding punctuation noise; case kept."""
    text = re.sub(r"\s+", " ", text.replace("_", " ")).strip(" .,;:-")
    return text


def with_article(phrase: str) -> str:
    """Put "a" or "an" before a phrase ("owl" -> "an owl"); proper names, numbers and
    phrases that already carry an article, a comma or a colon ("flag: Japan") stay as they are."""
    if not phrase:
        return phrase
    first = phrase.split()[0].lower()
    if (
        phrase[0].isupper()
        or phrase[0].isdigit()
        or ":" in phrase
        or "," in phrase
        or first in {"a", "an", "the", "some", "two", "three", "my", "our"}
    ):
        return phrase
    return ("an " if first[0] in "aeiou" else "a ") + phrase


def spoken(name: str) -> str:
    """CLDR's "flag: Japan" -> "the flag of Japan", "waving hand: medium skin tone" -> "waving
    hand with medium skin tone", other "a: b" -> "a, b": the form templates put in a sentence."""
    head, sep, tail = name.partition(": ")
    if not sep:
        return name
    if head == "flag":
        return f"the flag of {tail}"
    if "skin tone" in tail and "," not in tail:
        return f"{head} with {tail}"
    return f"{head}, {tail}"


def substitute(text: str, table: dict[str, str]) -> str:
    """Replace whole lower-case words found in ``table``; text unchanged if none is."""
    return _WORD.sub(lambda m: table.get(m.group(0), m.group(0)), text)


def fill(template: str, name: str, style: str) -> str:
    name = spoken(name)
    a_style = style if style in UNCOUNTABLE_STYLES else with_article(style)
    return template.format(a=with_article(name), n=name, s=style, **{"as": a_style})


def train_variants(
    name: str,
    keywords: list[str] | tuple[str, ...],
    style: str,
    subject: str,
    *,
    sentence: str = "",
    count: int = 8,
) -> list[str]:
    """Up to ``count`` distinct training captions of one picture; the first is ``name``.

    Style-free captions (bare name, keyword subsets, synonyms, the sentence) are drawn with a
    generator seeded by ``subject`` alone, so pictures of one subject in two styles share them.
    """
    name = clean(name)
    kws = list(dict.fromkeys(k.lower() for k in map(clean, keywords) if k))
    kws = [k for k in kws if k != name.lower()]
    shared = seeded_rng("shared", subject)
    styled = seeded_rng("styled", subject, style)
    templates = list(TRAIN_TEMPLATES)
    styled.shuffle(templates)
    subsets = []
    if kws:
        pick = shared.sample(kws, min(len(kws), shared.choice((1, 2, 2, 3))))
        subsets.append(", ".join(pick))
        pick = shared.sample(kws, min(len(kws), 2))
        subsets.append(", ".join([*pick, style]) if len(kws) > 1 else f"{pick[0]} {style}")
    synonym = substitute(name, TRAIN_SYNONYMS)
    synonyms = [fill(styled.choice(TRAIN_TEMPLATES), synonym, style)] if synonym != name else []
    # interleaved by priority, so that a small ``count`` still mixes the kinds of caption
    out: list[str] = [name, " ".join(sentence.split()), fill(templates[0], name, style)]
    out += [*subsets[:1], fill(templates[1], name, style), *synonyms, *subsets[1:]]
    out += [fill(t, name, style) for t in templates[2:4]]
    unique = list(dict.fromkeys(c for c in out if c))
    return unique[:count]


def paraphrase(name: str, style: str, subject: str) -> list[str]:
    """Evaluation paraphrases of ``name``, most natural first: an eval-only synonym, a colour
    moved behind its noun ("an apple that is red"), or an eval-only template."""
    name = clean(name)
    rng = seeded_rng("eval", subject)
    out: list[str] = []
    synonym = substitute(name.lower(), EVAL_SYNONYMS)
    words = name.split()
    if synonym != name.lower():
        out.append(fill(rng.choice(EVAL_TEMPLATES), synonym, style))
    if len(words) >= 2 and words[0].lower() in COLOURS and ":" not in name:
        out.append(f"{with_article(' '.join(words[1:]))} that is {words[0].lower()}")
    templates = list(EVAL_TEMPLATES)
    rng.shuffle(templates)
    out += [fill(t, name, style) for t in templates]
    return list(dict.fromkeys(out))
