"""Captioned text-to-image data: caption variants, split stability, pack round trip, eval set.

No packages, no network and no text encoder: pictures are synthetic and the encoder is a fake
that hashes strings to vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.training import caption_text as ct
from studio.training import captioned
from studio.training import captioned_sources as cs


def fake_encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = len(texts)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(n, 32, 384, generator=gen)
    lengths = torch.tensor([min(32, 2 + len(t.split())) for t in texts])
    mask = torch.arange(32)[None, :] < lengths[:, None]
    pooled = torch.nn.functional.normalize(torch.randn(n, 384, generator=gen), dim=1)
    return tokens * mask[:, :, None], mask, pooled


def picture(name: str, subject: str, source: int = 2, seed: int = 0, **kw) -> cs.Picture:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    style = ct.STYLE_EMOJI if source == 0 else ct.STYLE_CLIPART
    return cs.Picture(image, source, style, name, subject, **kw)


def subject_in(split: str, stem: str) -> str:
    """A subject name that :func:`captioned.is_val` puts in ``split``."""
    for i in range(1000):
        s = f"{stem} {i}"
        if captioned.is_val(s) == (split == "val"):
            return s
    raise AssertionError("no subject found")


def test_variants_start_with_the_name_and_carry_the_style_word() -> None:
    v = ct.train_variants("red apple", ["apple", "fruit", "red"], ct.STYLE_EMOJI, "red apple")
    assert v[0] == "red apple"
    assert 4 <= len(v) <= 8 and len(set(v)) == len(v)
    assert sum("emoji" in c for c in v) >= 3
    assert any(c in ("apple", "fruit", "red") or ", " in c for c in v[1:])  # keyword subsets
    # the same call gives the same captions: the choices are seeded by the subject
    assert v == ct.train_variants(
        "red apple", ["apple", "fruit", "red"], ct.STYLE_EMOJI, "red apple"
    )


def test_both_styles_of_one_subject_share_their_style_free_captions() -> None:
    kws = ["cat", "face", "pet", "animal"]
    noto = ct.train_variants("cat face", kws, ct.STYLE_EMOJI, "cat face")
    twemoji = ct.train_variants("cat face", kws, ct.STYLE_FLAT_EMOJI, "cat face")
    subsets = lambda vs: {c for c in vs if ", " in c and "emoji" not in c}  # noqa: E731
    assert noto[0] == twemoji[0] and subsets(noto) == subsets(twemoji) != set()


def test_cldr_names_are_spoken_in_templates_and_synonyms_apply() -> None:
    assert ct.spoken("flag: Japan") == "the flag of Japan"
    assert ct.spoken("waving hand: dark skin tone") == "waving hand with dark skin tone"
    assert ct.with_article("owl") == "an owl" and ct.with_article("Japan") == "Japan"
    assert ct.fill("{as} of {a}", "owl", ct.STYLE_CLIPART) == "clip art of an owl"
    assert ct.substitute("woman in a car", ct.TRAIN_SYNONYMS) == "lady in a automobile"
    assert not set(ct.TRAIN_SYNONYMS.values()) & set(ct.EVAL_SYNONYMS.values())
    v = ct.train_variants("happy woman", [], ct.STYLE_CLIPART, "s", sentence="A happy woman.")
    assert "A happy woman." in v and any("cheerful lady" in c for c in v)


def test_paraphrases_differ_from_every_training_template() -> None:
    name, kws = "red apple", ["apple", "fruit"]
    train = set(ct.train_variants(name, kws, ct.STYLE_EMOJI, name, count=99))
    para = ct.paraphrase(name, ct.STYLE_EMOJI, name)
    assert "an apple that is red" in para
    assert any("scarlet" in p for p in para)
    assert not train & set(para)


def test_split_is_by_subject_and_stable() -> None:
    subjects = [f"thing {i}" for i in range(2000)]
    first = [captioned.is_val(s) for s in subjects]
    assert first == [captioned.is_val(s) for s in subjects]
    assert 0.03 < np.mean(first) < 0.07  # about 5%
    assert captioned.is_val("Waving  Hand") == captioned.is_val("waving hand")


def _pictures() -> list[cs.Picture]:
    train_s, val_s = subject_in("train", "apple"), subject_in("val", "pear")
    return [
        picture(train_s, train_s, 0, 1, keywords=("fruit", "green")),
        picture(train_s, train_s, 1, 2, keywords=("fruit", "green")),
        picture(f"{val_s}: dark skin tone", val_s, 0, 3, keywords=("fruit", "sweet")),
        picture(val_s, val_s, 1, 4, keywords=("fruit", "sweet")),
        picture("green tree", subject_in("train", "tree"), 2, 5, keywords=("plant",)),
    ]


def test_pack_round_trip(tmp_path: Path) -> None:
    pics = _pictures()
    out = tmp_path / "captioned"
    summary = captioned.write_pack(pics, out, fake_encode, "emoji")
    assert (out / "READY").read_text().strip() == "emoji"
    assert not (tmp_path / "captioned.tmp").exists()
    pack = captioned.load_captioned(out)
    assert pack.bank[0] == ""
    assert len(pack.train.images) == 3 and len(pack.val.images) == 2
    assert summary["train"]["count"] == 3 and summary["val"]["count"] == 2
    assert pack.train.images.dtype == np.uint8 and pack.train.images.shape[1:] == (64, 64, 3)
    np.testing.assert_array_equal(pack.train.images[0], pics[0].image)  # exact: no resampling
    assert pack.train.caption_ids.dtype == np.int32 and pack.train.caption_ids.shape[1] == 8
    assert list(pack.train.source) == [0, 1, 2] and list(pack.val.source) == [0, 1]
    assert pack.bank[pack.train.canonical[0]] == pics[0].name
    assert pack.bank[pack.val.canonical[1]] == pics[3].name
    assert (pack.train.caption_ids[:, 0] == pack.train.canonical).all()
    m = len(pack.bank)
    assert pack.tokens.shape == (m, 16, 384) and pack.tokens.dtype == torch.float16
    assert pack.mask.shape == (m, 16) and pack.mask.dtype == torch.bool
    assert pack.pooled.shape == (m, 384) and pack.pooled.dtype == torch.float16
    assert (pack.tokens.float().abs().sum(-1)[~pack.mask] == 0).all()  # zero on padding
    rows = pack.pick_captions(pack.train.caption_ids, np.random.default_rng(0))
    assert rows.shape == (3,) and (rows >= 1).all()
    for r, j in enumerate(rows):
        assert j in pack.train.caption_ids[r]


def test_no_validation_caption_is_a_training_caption(tmp_path: Path) -> None:
    pack_dir = tmp_path / "p"
    captioned.write_pack(_pictures(), pack_dir, fake_encode, "full")
    pack = captioned.load_captioned(pack_dir)
    used = lambda ids: {pack.bank[j] for j in ids.ravel() if j >= 0}  # noqa: E731
    train, val = used(pack.train.caption_ids), used(pack.val.caption_ids)
    assert not train & val
    assert {p.name for p in _pictures() if captioned.is_val(p.subject)} <= val


def test_eval_paraphrases_are_never_in_the_bank(tmp_path: Path) -> None:
    captioned.write_pack(_pictures(), tmp_path / "p", fake_encode, "full")
    pack = captioned.load_captioned(tmp_path / "p")
    assert pack.eval, "validation pictures give evaluation pairs"
    bank = set(pack.bank)
    for entry in pack.eval:
        assert entry["paraphrase"] not in bank
        assert entry["paraphrase"] != entry["caption"]
        assert pack.bank[pack.val.canonical[entry["index"]]] == entry["caption"]


def test_a_second_build_replaces_the_pack_whole(tmp_path: Path) -> None:
    out = tmp_path / "captioned"
    captioned.write_pack(_pictures()[:2], out, fake_encode, "emoji")
    captioned.write_pack(_pictures(), out, fake_encode, "full")
    assert (out / "READY").read_text().strip() == "full"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train"]["count"] + summary["val"]["count"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["captioned"]


def test_square64_composites_on_white_and_flags_blank_images() -> None:
    img = Image.new("RGBA", (300, 150), (0, 0, 0, 0))
    img.paste((200, 0, 0, 255), (100, 25, 200, 125))
    rgb, coverage = cs.square64(img)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 255).all() and rgb[32, 32, 0] > 150 and rgb[32, 32, 1] < 60
    assert 0.1 < coverage < 0.2 and not cs.is_blank(rgb, coverage)
    blank, cov = cs.square64(Image.new("RGBA", (64, 64), (0, 0, 0, 0)))
    assert cs.is_blank(blank, cov)


def test_source_text_parsers(tmp_path: Path) -> None:
    txt = tmp_path / "025quarter.txt"
    txt.write_text("A US 25 cent piece called a quarter.\nfr.utf8=Une piece.\n")
    assert cs.tuxpaint_sentence(txt) == "A US 25 cent piece called a quarter."
    assert cs.stamp_name("025quarter") == "quarter"
    svg = tmp_path / "a.svg"
    svg.write_text(
        "<svg><metadata><rdf:RDF><cc:Work><dc:title>Red Owl</dc:title><dc:subject><rdf:Bag>"
        "<rdf:li></rdf:li><rdf:li>bird</rdf:li><rdf:li>night</rdf:li></rdf:Bag></dc:subject>"
        "<dc:creator><cc:Agent><dc:title>Someone</dc:title></cc:Agent></dc:creator>"
        "</cc:Work></rdf:RDF></metadata></svg>"
    )
    assert cs.openclipart_meta(svg) == ("Red Owl", ["bird", "night"], frozenset({"someone"}))
    vocab = frozenset({"man", "singing", "lightning"})
    assert cs.stem_caption("a_man_singing_01", vocab | {"a"}) == "a man singing"
    assert cs.stem_caption("lightning_jon_phil_01", vocab, frozenset({"jon", "phillips"})) == (
        "lightning"
    )


@pytest.mark.parametrize("keywords", [[""], [" ", "cup"], ["Cup", "mug", "tea"]])
def test_variants_never_contain_the_empty_prompt_or_repeat_the_name(keywords: list[str]) -> None:
    v = ct.train_variants("cup", keywords, ct.STYLE_ICON, "cup")
    assert "" not in v and v.count("cup") == 1 and "Cup" not in v


def test_icon_and_clipart_names_are_words() -> None:
    assert cs.papirus_name("drive-harddisk") == "drive harddisk"
    assert cs.papirus_name("folder-red-music") == "red music folder"
    assert cs.papirus_name("folder-adwaita-music") == ""  # a palette, not a colour
    assert cs.papirus_name("folder-red-sync") == ""  # rare folder kinds are left out
    assert cs.papirus_name("user-blue-home") == ""
    assert cs.papirus_name("folder-yellow-kde") == ""  # not a plain yellow folder
    assert cs.papirus_name("blueman-camera") == "camera"
    vocab = frozenset({"red", "owl", "dead", "frogs", "contour"})
    assert cs.clean_title("Clipart by Someone - Red Owl", vocab) == "red owl"
    assert cs.clean_title("gallo di profilo", vocab) == ""
    assert cs.clean_title("2 dead_frogs", vocab) == "2 dead frogs"


def test_photographs_are_told_from_flat_drawings() -> None:
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    photo[:, :, 3] = 255
    flat = np.zeros((64, 64, 4), np.uint8)
    flat[:32] = (200, 30, 30, 255)
    flat[32:] = (20, 20, 200, 255)
    assert cs.looks_photographic(Image.fromarray(photo))
    assert not cs.looks_photographic(Image.fromarray(flat))


def test_huge_or_corrupt_bitmaps_are_not_decoded(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.new("RGBA", (64, 48), (1, 2, 3, 255)).save(good)
    bad.write_bytes(b"\x89PNG not really")
    assert cs.open_bitmap(good).size == (64, 48)
    assert cs.open_bitmap(good, max_pixels=1000) is None  # the caller renders the SVG instead
    assert cs.open_bitmap(bad) is None
