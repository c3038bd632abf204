"""Training and judging with the miniature CLIP: the loss, caption sampling, R-precision maths,
and a few resumable training steps on a tiny pack."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from studio.models.archs.mini_clip import MiniClip
from studio.models.loading import load_weights
from studio.training import train_clip
from studio.training.eval_adherence import derangement, r_precision, ranked_first


def unit(n: int, d: int = 8, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_matching_pairs_rank_first_and_shuffled_ones_do_not() -> None:
    rng = np.random.default_rng(0)
    e = unit(50, 64)
    assert r_precision(e, e, rng) == 1.0
    assert r_precision(e, e[derangement(50, rng)], rng) == 0.0


def test_a_tie_is_a_miss_and_chance_is_one_in_the_candidates() -> None:
    rng = np.random.default_rng(0)
    same = torch.ones(10, 4) / 2.0  # every caption scores the same
    assert r_precision(same, same, rng) == 0.0
    # random vectors: the own caption is first about 1 time in (distractors + 1)
    score = r_precision(unit(2000, 16, 1), unit(2000, 16, 2), rng, distractors=3)
    assert score == pytest.approx(0.25, abs=0.04)


def test_same_concept_captions_are_never_distractors() -> None:
    rng = np.random.default_rng(0)
    image = unit(4)
    image[1] = image[0]  # two images of one concept with one caption
    text = image.clone()
    assert r_precision(image, text, rng) == 0.5  # as distractors of each other: ties
    assert r_precision(image, text, rng, groups=np.array([7, 7, 8, 9])) == 1.0
    with pytest.raises(ValueError, match="same concept"):
        ranked_first(image, text, rng, groups=np.zeros(4, int))


def test_derangement_moves_every_item() -> None:
    for n in (2, 3, 10, 101):
        perm = derangement(n, np.random.default_rng(n))
        assert sorted(perm.tolist()) == list(range(n))
        assert not np.any(perm == np.arange(n))


def test_loss_is_low_for_aligned_pairs_and_counts_same_concept_pairs_as_positives() -> None:
    e = unit(8, 32)
    scale = torch.tensor(100.0)
    distinct = torch.eye(8, dtype=torch.bool)
    aligned = train_clip.contrastive_loss(e, e, scale, distinct)
    shuffled = train_clip.contrastive_loss(e, e.roll(1, 0), scale, distinct)
    assert float(aligned) < 0.01 < float(shuffled)
    # images 0 and 1 matching each other's caption: wrong pairs for distinct concepts, half
    # right for one concept (both captions are positives of both images)
    crossed = e[[1, 0, 2, 3, 4, 5, 6, 7]]
    one_concept = train_clip.positives(torch.tensor([0, 0, 2, 3, 4, 5, 6, 7]), torch.arange(8))
    apart = train_clip.contrastive_loss(e, crossed, scale, distinct)
    together = train_clip.contrastive_loss(e, crossed, scale, one_concept)
    assert float(together) < 0.6 * float(apart)


def test_one_concept_or_one_caption_string_is_a_match() -> None:
    canonical = torch.tensor([5, 5, 6, 7])
    caption = torch.tensor([1, 2, 3, 3])  # images 2 and 3 both drew caption 3 ("flag")
    match = train_clip.positives(canonical, caption)
    assert match.tolist() == [
        [True, True, False, False],
        [True, True, False, False],
        [False, False, True, True],
        [False, False, True, True],
    ]


def test_augment_keeps_range_shape_and_white_borders() -> None:
    x = torch.ones(4, 3, 64, 64)
    out = train_clip.augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # a white picture stays white however it is shifted (up to the brightness jitter)
    assert float(out.min()) > 0.85 and float(out.max()) <= 1.0


def make_pack(folder, n: int = 24, captions: int = 13) -> None:
    rng = np.random.default_rng(0)
    texts = [""] + [f"caption {i}" for i in range(1, captions)]
    for split, count in (("train", n), ("val", n // 2)):
        canonical = rng.integers(1, captions, count).astype(np.int32)
        ids = np.full((count, 3), -1, np.int32)
        ids[:, 0] = canonical
        ids[::2, 1] = rng.integers(1, captions, (count + 1) // 2)
        images = rng.integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)
        source = np.zeros(count, np.uint8)
        arrays = {"images": images, "caption_ids": ids, "canonical": canonical, "source": source}
        np.savez(folder / f"{split}.npz", **arrays)
    encodings = {
        "tokens": torch.zeros(captions, 16, 384, dtype=torch.float16),
        "mask": torch.ones(captions, 16, dtype=torch.uint8),
        "pooled": unit(captions, 384, 3).half(),
    }
    save_file(encodings, str(folder / "captions.safetensors"))
    (folder / "captions.json").write_text(json.dumps(texts))
    entries = [{"index": i, "caption": "caption 1", "paraphrase": "the first"} for i in range(3)]
    (folder / "eval.json").write_text(json.dumps(entries))


def test_training_resumes_and_exports_weights_with_the_caption_bank(tmp_path) -> None:
    make_pack(tmp_path)
    export = tmp_path / "clip.safetensors"
    common = ["--data", str(tmp_path), "--runs", str(tmp_path / "runs"), "--widths", "4,8,8,8"]
    common += ["--batch", "8", "--export", str(export), "--eval-every", "2", "--log-every", "1"]
    first = train_clip.train(train_clip.build_parser().parse_args([*common, "--steps", "2"]))
    assert first["step"] == 2 and "canonical" in first["history"][-1]["r_precision_val"]
    second = train_clip.train(train_clip.build_parser().parse_args([*common, "--steps", "3"]))
    assert second["step"] == 3 and len(second["history"]) == 2  # resumed, not restarted
    clip = load_weights(export).module
    assert isinstance(clip, MiniClip)
    assert len(clip.bank_captions) == len(set(clip.bank_captions)) > 0
    assert "" not in clip.bank_captions
