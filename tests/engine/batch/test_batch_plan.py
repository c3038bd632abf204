"""Batch planning and the manifest: which files become which outputs, and what resume skips."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from studio.engine.batch.contract import ItemOutcome
from studio.engine.batch.manifest import MANIFEST_NAME, Manifest, file_sha256, item_input_sha256
from studio.engine.batch.plan import PROMPT_SEED_STRIDE, make_spec, plan_batch
from studio.errors import BadInputError
from studio.task_kind import TaskKind


@dataclass(frozen=True)
class Params:
    scale: float = 2.0
    style_image: np.ndarray | None = None
    model: str = ""

    task: ClassVar[TaskKind] = TaskKind.UPSCALE


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    for name in ("b.png", "a.jpg", "a.png", "sub/c.webp", ".hidden.png", "notes.txt"):
        _png(src / name) if name.endswith((".png", ".webp")) else (src / name).write_text("x")
    (src / "a.jpg").write_bytes((src / "a.png").read_bytes())
    return src


def test_plan_is_sorted_skips_hidden_and_names_colliding_outputs_in_full(folder: Path) -> None:
    items = plan_batch(TaskKind.UPSCALE, folder, folder.parent / "out")
    assert [i.key for i in items] == ["a.jpg", "a.png", "b.png"]
    assert [i.output for i in items] == ["a.jpg.png", "a.png.png", "b.png"]
    assert all(Path(i.source).is_absolute() and i.mask is None for i in items)


def test_recursive_keeps_the_relative_folder_and_leaves_out_an_out_dir_inside(folder) -> None:
    _png(folder / "out" / "old.png")  # an earlier batch's output inside IN_DIR
    items = plan_batch(TaskKind.UPSCALE, folder, folder / "out", recursive=True, extension="jpg")
    assert [i.key for i in items] == ["a.jpg", "a.png", "b.png", "sub/c.webp"]
    assert items[-1].output == "sub/c.jpg"


def test_masks_by_name_prefer_png_and_a_missing_one_is_still_planned(tmp_path: Path) -> None:
    src, masks = tmp_path / "in", tmp_path / "masks"
    _png(src / "x.jpg"), _png(src / "y.png")
    _png(masks / "x.bmp"), _png(masks / "x.png")
    items = plan_batch(TaskKind.INPAINT, src, tmp_path / "out", masks_dir=str(masks))
    assert Path(items[0].mask).name == "x.png"
    assert Path(items[1].mask) == (masks / "y.png").resolve() and not Path(items[1].mask).exists()
    one = plan_batch(TaskKind.INPAINT, src, tmp_path / "out", mask=str(masks / "x.bmp"))
    assert {Path(i.mask).name for i in one} == {"x.bmp"}


def test_prompts_skip_blank_and_comment_lines_and_seed_by_line(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("# a comment\na red apple\n\n  a blue car  \n", encoding="utf-8")
    items = plan_batch(TaskKind.GENERATE, None, tmp_path, prompts=str(prompts), count=2, seed=7)
    assert [(i.key, i.output, i.prompt, i.seed) for i in items] == [
        ("prompt-0002-01", "0002-01.png", "a red apple", 7 + PROMPT_SEED_STRIDE),
        ("prompt-0002-02", "0002-02.png", "a red apple", 8 + PROMPT_SEED_STRIDE),
        ("prompt-0004-01", "0004-01.png", "a blue car", 7 + 3 * PROMPT_SEED_STRIDE),
        ("prompt-0004-02", "0004-02.png", "a blue car", 8 + 3 * PROMPT_SEED_STRIDE),
    ]
    prompts.write_text("# only comments\n\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="no prompts"):
        plan_batch(TaskKind.GENERATE, None, tmp_path, prompts=str(prompts))


def test_bad_folders_and_extensions_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such folder"):
        plan_batch(TaskKind.UPSCALE, tmp_path / "nope", tmp_path / "out")
    with pytest.raises(BadInputError, match="no images"):
        plan_batch(TaskKind.UPSCALE, tmp_path, tmp_path / "out")
    _png(tmp_path / "a.png")
    with pytest.raises(BadInputError, match=r"cannot write '\.gif'"):
        plan_batch(TaskKind.UPSCALE, tmp_path, tmp_path / "out", extension=".gif")


def test_options_hash_follows_params_arrays_and_labels(tmp_path: Path) -> None:
    base = make_spec(TaskKind.UPSCALE, Params(), tmp_path).options_hash
    assert make_spec(TaskKind.UPSCALE, Params(), tmp_path).options_hash == base
    assert make_spec(TaskKind.UPSCALE, Params(scale=3.0), tmp_path).options_hash != base
    assert make_spec(TaskKind.UPSCALE, Params(), tmp_path, labels=False).options_hash != base
    style = np.zeros((2, 2, 3), np.uint8)
    with_style = make_spec(TaskKind.UPSCALE, Params(style_image=style), tmp_path).options_hash
    style[0, 0, 0] = 1
    assert make_spec(TaskKind.UPSCALE, Params(style_image=style), tmp_path).options_hash != (
        with_style
    )
    threads = make_spec(TaskKind.UPSCALE, Params(), tmp_path, {"threads": 3}).options_hash
    assert threads == base, "threads never change a byte, so they must not force a redo"


def test_options_hash_follows_the_weights_the_params_name(tmp_path: Path) -> None:
    """Replacing an artist's weight file (same name, new bytes) must redo the batch; a
    registry model is fingerprinted by the hashes the registry pins."""
    from studio.engine.batch.plan import weights_fingerprint

    weights = tmp_path / "my-esrgan.pth"
    weights.write_bytes(b"first training run")
    first = make_spec(TaskKind.UPSCALE, Params(model=str(weights)), tmp_path).options_hash
    assert make_spec(TaskKind.UPSCALE, Params(model=str(weights)), tmp_path).options_hash == first
    weights.write_bytes(b"second training run")
    assert make_spec(TaskKind.UPSCALE, Params(model=str(weights)), tmp_path).options_hash != first
    registry = weights_fingerprint(Params(model="realesrgan-x4plus"))
    assert len(registry["realesrgan-x4plus"]) == 64
    assert weights_fingerprint(Params(model="no-such-model")) == {}


def _record(manifest: Manifest, spec, item, ok: bool = True) -> None:
    out = manifest.out_dir / item.output
    out.parent.mkdir(parents=True, exist_ok=True)
    if ok:
        out.write_bytes(b"result of " + item.key.encode())
    manifest.append(
        ItemOutcome(
            item.key,
            ok,
            output=item.output if ok else None,
            input_sha256=item_input_sha256(item),
            output_sha256=file_sha256(out) if ok else None,
            reason=None if ok else "broken",
        ),
        spec.options_hash,
    )


def test_resume_skips_only_intact_records_and_retries_failures(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for name in ("a", "b", "c", "d", "e"):
        _png(src / f"{name}.png", value=ord(name))
    spec = make_spec(TaskKind.UPSCALE, Params(), out)
    items = plan_batch(TaskKind.UPSCALE, src, out)
    manifest = Manifest(out)
    for item in items[:4]:
        _record(manifest, spec, item, ok=item.key != "b.png")
    manifest.close()
    _png(src / "c.png", value=1)  # the input changed since
    (out / "d.png").write_bytes(b"edited by hand")  # the output changed since
    split = manifest.classify(spec, items)
    assert [i.key for i in split.done] == ["a.png"]
    assert [i.key for i in split.redo] == ["b.png", "c.png", "d.png"]
    assert [i.key for i in split.todo] == ["e.png"]
    assert [i.key for i in split.to_run] == ["b.png", "c.png", "d.png", "e.png"]
    other = make_spec(TaskKind.UPSCALE, Params(scale=3.0), out)
    assert manifest.classify(other, items).done == [], "changed options redo every file"


def test_a_torn_last_line_is_ignored_and_the_next_record_starts_a_new_line(tmp_path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _png(src / "a.png"), _png(src / "b.png", 9)
    spec = make_spec(TaskKind.UPSCALE, Params(), out)
    a, b = plan_batch(TaskKind.UPSCALE, src, out)
    manifest = Manifest(out)
    _record(manifest, spec, a)
    manifest.close()
    with open(out / MANIFEST_NAME, "ab") as f:
        f.write(b'{"key": "b.png", "ok": tr')  # killed mid-write
    assert set(manifest.records()) == {"a.png"}
    _record(manifest, spec, b)
    manifest.close()
    lines = (out / MANIFEST_NAME).read_bytes().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["key"] == "b.png"
    assert [i.key for i in manifest.classify(spec, [a, b]).done] == ["a.png", "b.png"]


def test_a_second_batch_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    first, second = Manifest(tmp_path), Manifest(tmp_path)
    first.open()
    try:
        with pytest.raises(BadInputError, match="another batch is writing"):
            second.open()
    finally:
        first.close()
    second.open()
    second.close()
