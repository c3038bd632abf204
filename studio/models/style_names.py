"""Names for the 26 built-in styles of the multistyle network (which ships them unnamed).

Named by looking at each style rendered on photos (scikit-image's chelsea, astronaut and coffee).
Only ``starry-night`` is named after a painting: its short blue strokes with yellow highlights
clearly recall Van Gogh's *The Starry Night*. The source never said which paintings the styles
were trained on, so the other names describe what the style does, not where it came from.

Each entry: (index into the network's style weights, lower-kebab-case id, display name,
short description). Thumbnails are ``resources/styles/<id>.png`` (128x128).
"""

from __future__ import annotations

StyleName = tuple[int, str, str, str]

STYLES: tuple[StyleName, ...] = (
    (
        0,
        "golden-hour",
        "Golden Hour",
        "Warm yellow and ochre fills on pale blue, with soft dark outlines.",
    ),
    (
        1,
        "ink-and-yellow",
        "Ink and Yellow",
        "Thick black brush lines on white with flat yellow patches; graphic and abstract.",
    ),
    (
        2,
        "charcoal-sketch",
        "Charcoal Sketch",
        "Grey charcoal-like drawing on white with a faint peach tint.",
    ),
    (
        3,
        "electric-strokes",
        "Electric Strokes",
        "Dense cyan, blue, red and ochre dashes on a dark ground; the subject dissolves.",
    ),
    (
        4,
        "red-poster",
        "Red Poster",
        "Flat poster shapes in red, yellow and pale blue with dark outlines.",
    ),
    (
        5,
        "pastel-impressionist",
        "Pastel Impressionist",
        "Muted orange, lilac and grey dabs; soft and painterly.",
    ),
    (
        6,
        "indigo-cells",
        "Indigo Cells",
        "Dark indigo covered by a network of small cell-like spots.",
    ),
    (7, "primary-blocks", "Primary Blocks", "Bold flat areas of blue, yellow and red on black."),
    (
        8,
        "candy-watercolour",
        "Candy Watercolour",
        "White paper with cyan, pink and yellow washes and thin lines.",
    ),
    (9, "teal-mosaic", "Teal Mosaic", "Small teal and red tiles on grey, like a mosaic."),
    (10, "copper", "Copper", "Warm rust and copper monochrome with dark outlines."),
    (
        11,
        "golden-woodcut",
        "Golden Woodcut",
        "Gold and ochre with woodcut-like dark lines on cream.",
    ),
    (
        12,
        "lavender-pastel",
        "Lavender Pastel",
        "Soft yellow and lavender pastel with gentle strokes.",
    ),
    (13, "lime-fauve", "Lime Fauve", "Acid lime, teal and red in loud Fauvist colour."),
    (14, "teal-wash", "Teal Wash", "Pale teal monochrome wash with peach highlights."),
    (15, "stained-glass", "Stained Glass", "Pale pastel shards separated by dark lead-like lines."),
    (16, "blue-crayon", "Blue Crayon", "Diagonal blue, violet and orange crayon streaks."),
    (
        17,
        "red-brick-weave",
        "Red Brick Weave",
        "Red, orange and blue bricks woven over everything; the subject is barely visible.",
    ),
    (
        18,
        "sepia-engraving",
        "Sepia Engraving",
        "Brown line work on khaki and cream, like an old engraving.",
    ),
    (
        19,
        "starry-night",
        "Starry Night",
        "Short swirling blue strokes with yellow highlights, after Van Gogh's The Starry Night.",
    ),
    (20, "crimson", "Crimson", "Deep red and crimson with navy shadows and dark outlines."),
    (
        21,
        "pastel-comic",
        "Pastel Comic",
        "Thick black outlines over flat pale blue, pink and yellow.",
    ),
    (
        22,
        "ink-and-red",
        "Ink and Red",
        "Bold black and white brush strokes with red accents on periwinkle.",
    ),
    (
        23,
        "dark-oil",
        "Dark Oil",
        "Dark slate and charcoal greens with warm highlights, like an old oil portrait.",
    ),
    (
        24,
        "blue-woodblock",
        "Blue Woodblock",
        "Prussian blue and teal lines on cream, like a Japanese woodblock print.",
    ),
    (
        25,
        "slate-and-amber",
        "Slate and Amber",
        "Cool slate-blue fragmented strokes with amber and orange warmth.",
    ),
)

_BY_ID = {s[1]: s for s in STYLES}


def style_by_id(style_id: str) -> StyleName:
    """The entry for ``style_id``; ``KeyError`` naming the valid ids otherwise."""
    try:
        return _BY_ID[style_id]
    except KeyError:
        raise KeyError(f"unknown style {style_id!r} (known: {', '.join(_BY_ID)})") from None


def style_index(style_id: str) -> int:
    """Index into the network's 26 style weights."""
    return style_by_id(style_id)[0]
