"""The README's commands work: the two set-up commands are the ones CI runs, and every command
of its "Command line" block runs (on small inputs and tiny random-weight files in a tmp dir).

A README command with a file name or placeholder this test cannot map fails the test: add the
mapping (an input made here, or an output name) together with the command.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from studio.cli import main

ROOT = Path(__file__).resolve().parents[1]

#: README file names the commands write; they are written into the tmp dir
OUTPUTS = {"out.png", "grid.png", "strip.png", "var.png", "model.safetensors", "big/"}
#: option values that would make a tiny input slow, and the small value used instead
SMALLER = {
    ("--width", "3000"): "48",  # 12 px through realesrgan x4 once, not four times
    ("--steps", "20"): "2",  # a tiny random Stable Diffusion folder: two steps at 64 px
    ("--size", "512"): "64",
}
#: (command, README name) -> the input used instead (realesrgan-x4plus is slow on a CPU)
PER_COMMAND = {("upscale", "in.png"): "tiny.png"}
FILE_LIKE = re.compile(r"^[\w.-]+\.[A-Za-z]{2,12}$|^[A-Z]{2,}$")  # a.png, model.param, IMAGE


def readme() -> str:
    return (ROOT / "README.md").read_text()


def setup_commands() -> list[str]:
    section = readme().split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = setup_commands()
    assert len(commands) == 2
    assert commands[0].endswith("studio resources/sample.jpg")
    assert (ROOT / "resources" / "sample.jpg").is_file()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup_commands()[1] in ci.splitlines()
    assert "ruff check" in ci


# -- the "Command line" block -------------------------------------------------------------------
def command_block_lines() -> list[str]:
    section = readme().split("## Command line", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.+?)\n```", section, re.S)
    return [line.strip() for line in block.splitlines() if line.strip()]


def expand(line: str) -> list[str]:
    """Every command one README line shows.

    ``[--opt v]`` groups are optional and ``a|b`` alternatives: the line runs without them,
    then with all of them once per alternative. A comment ``(or: studio ...)`` is a command of
    its own; ``# or --opt v`` is the line with its last option replaced by that one.
    """
    code, _, comment = line.partition("#")
    code = code.strip()
    groups = re.findall(r"\[([^\]]+)\]", code)
    base = re.sub(r"\s*\[[^\]]+\]", "", code).strip()
    commands = [base]
    alternatives = max((len(g.split("|")) for g in groups), default=0)
    for i in range(alternatives):
        chosen = []
        for group in groups:
            words = group.split()
            values = words[-1].split("|")
            chosen.append(" ".join([*words[:-1], values[i % len(values)]]))
        commands.append(" ".join([base, *chosen]))
    comment = comment.strip()
    if match := re.search(r"\bor:\s*(studio\b[^)]*)", comment):
        commands.append(match.group(1).strip())
    elif match := re.match(r"or\s+(--\S+(?:\s+[^-\s]\S*)?)\s*$", comment):
        options = list(re.finditer(r"\s--\S+(?:\s+[^-\s]\S*)?", base))
        assert options, f"{line!r}: '# or ...' needs an option to replace"
        commands.append(base[: options[-1].start()] + " " + match.group(1))
    return commands


def test_expand_reads_optional_groups_and_alternatives() -> None:
    assert expand("studio up a b --m x [--w 30] [--t 5|0]  # note") == [
        "studio up a b --m x",
        "studio up a b --m x --w 30 --t 5",
        "studio up a b --m x --w 30 --t 0",
    ]
    assert expand("studio x a.png --right 256   # or --aspect 16:9") == [
        "studio x a.png --right 256",
        "studio x a.png --aspect 16:9",
    ]
    assert expand("studio   # the editor (or: studio IMAGE)") == ["studio", "studio IMAGE"]


def readme_commands() -> list[str]:
    return [command for line in command_block_lines() for command in expand(line)]


def _write_image(path: Path, width: int, height: int, seed: int, alpha: bool = False) -> None:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], 2)
    pixels = np.clip(pixels + rng.normal(0, 10, pixels.shape), 0, 255).astype(np.uint8)
    if alpha:
        pixels = np.dstack([pixels, np.full((height, width), 255, np.uint8)])
    Image.fromarray(pixels).save(path)


def _tiny_ncnn_pair(folder: Path) -> tuple[Path, Path]:
    """A random-weight SRVGG x2 as ncnn .param/.bin, by the writer the ncnn tests use."""
    from studio.models.archs.srvgg import SRVGGNetCompact

    spec = importlib.util.spec_from_file_location(
        "ncnn_writer", ROOT / "tests" / "models" / "test_ncnn.py"
    )
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    folder.mkdir()
    torch.manual_seed(0)
    return writer.write_srvgg(folder, SRVGGNetCompact(3, 3, nf=4, num_conv=1, scale=2).eval())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Every input file name the README uses, made small (weights: tiny random nets)."""
    from spandrel.architectures.LaMa import LaMa
    from spandrel.architectures.SPAN import SPAN

    d = tmp_path_factory.mktemp("readme-inputs")
    _write_image(d / "in.png", 48, 32, 0)
    _write_image(d / "tiny.png", 12, 8, 3)
    mask = np.zeros((32, 48), np.uint8)
    mask[12:20, 18:30] = 255
    Image.fromarray(mask).save(d / "mask.png")
    _write_image(d / "painting.jpg", 32, 32, 1)
    _write_image(d / "emoji.png", 40, 40, 2, alpha=True)
    torch.manual_seed(0)
    esrgan = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2)
    torch.save(esrgan.state_dict(), d / "my-esrgan.pth")  # a weights-only pickle
    lama = LaMa(in_nc=4).state_dict()
    save_file({k: v.contiguous() for k, v in lama.items()}, d / "big-lama.safetensors")
    param, bin_path = _tiny_ncnn_pair(d / "ncnn")
    pages = d / "pages"  # a folder for studio batch
    pages.mkdir()
    for i in range(3):
        _write_image(pages / f"page-{i}.png", 16, 12, 10 + i)
    files = {p.name: p for p in d.iterdir() if p.is_file()}
    files["pages/"] = pages
    files |= {"model.param": param, "model.bin": bin_path, "IMAGE": d / "in.png"}
    from tests.tiny_sd import tiny_sd_folder  # a Stable Diffusion folder, tiny and random

    files["sd15-folder"] = tiny_sd_folder(d / "sd15-folder")
    return files


def to_argv(command: str, inputs: dict[str, Path], out_dir: Path) -> list[str]:
    """The README command's arguments with its files mapped; fails on what cannot be mapped."""
    words = shlex.split(command)
    assert words[0] == "studio", f"README command {command!r} does not start with 'studio'"
    argv = []
    for index, word in enumerate(words[1:], 1):
        word = PER_COMMAND.get((words[1], word), word)
        if word in inputs:
            word = str(inputs[word])
        elif word in OUTPUTS:
            word = str(out_dir / word)
        elif FILE_LIKE.match(word) and not re.match(r"^[\d.:]+$", word):
            pytest.fail(
                f"README command {command!r}: no test mapping for {word!r}; add it to "
                "OUTPUTS or to the inputs fixture of tests/test_readme.py"
            )
        argv.append(SMALLER.get((words[index - 1], word), word))
    return argv


def run_in_process(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: --version, --help and usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


GUI_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from studio.cli import main

    app = QApplication(sys.argv[:1])

    def report_and_quit():
        from studio.ui.main_window import MainWindow

        shown = app.topLevelWidgets()
        (window,) = [w for w in shown if isinstance(w, MainWindow) and w.isVisible()]
        doc = window.document
        size = [doc.width, doc.height] if doc else None
        print("GUI:" + json.dumps({"title": window.windowTitle(), "size": size}), flush=True)
        window.ask_save_changes = lambda: "discard"
        window.close()
        app.quit()

    for argv in json.loads(sys.argv[1]):
        QTimer.singleShot(500, report_and_quit)
        if main(argv) != 0:
            sys.exit(1)
    """
)


def run_editor(argvs: list[list[str]], home: Path) -> list[dict]:
    """The editor, once per argument list, in a fresh offscreen process that reports what its
    window shows and closes it."""
    env = dict(os.environ, STUDIO_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [sys.executable, "-c", GUI_SCRIPT, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    shown = [json.loads(line[4:]) for line in out.stdout.splitlines() if line.startswith("GUI:")]
    assert len(shown) == len(argvs), f"the editor did not show every window: {out.stderr[-500:]}"
    return shown


@pytest.fixture
def shared_model_cache(monkeypatch) -> None:
    """Headless commands share one model cache, as the editor's engine does (each command
    otherwise loads its model again)."""
    from studio.engine import runner
    from studio.engine.cache import ModelCache

    monkeypatch.setattr(
        runner, "JobRunner", functools.partial(runner.JobRunner, cache=ModelCache())
    )


def _check_outputs(command: str, argv: list[str], out_dir: Path, inputs: dict[str, Path]) -> None:
    """Each output exists and is what the command says, where that is easy to state."""
    written = [Path(a) for a in argv if Path(a).parent == out_dir]
    if command.startswith("studio batch"):  # an output folder: one image per input, or none
        (folder,) = written
        made = sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []
        assert made == ([] if "--dry-run" in argv else ["page-0.png", "page-1.png", "page-2.png"])
        return
    for path in written:
        assert path.is_file() and path.stat().st_size > 0, f"{command!r} did not write {path}"
    images = {p.name: Image.open(p) for p in written if p.suffix == ".png"}
    source = Image.open(inputs["in.png"]).size
    if "--aspect 16:9" in command:
        w, h = images["out.png"].size
        assert abs(w / h - 16 / 9) < 0.1 and h >= source[1], (w, h)
    if "--right 256" in command:
        assert images["out.png"].size == (source[0] + 256, source[1])
    if "--width" in argv:
        assert images["out.png"].size[0] == int(argv[argv.index("--width") + 1])
    if command.startswith("studio inpaint"):
        far = np.ones((32, 48), bool)  # beyond the mask grown by --grow 4 and --feather 8
        far[max(0, 12 - 13) : 20 + 13, 18 - 13 : 30 + 13] = False
        out, source = np.asarray(images["out.png"]), np.asarray(Image.open(inputs["in.png"]))
        assert far.any() and np.array_equal(out[far], source[far])
        assert not np.array_equal(out[12:20, 18:30], source[12:20, 18:30])


def test_every_command_line_example_runs(inputs, tmp_path, capsys, shared_model_cache) -> None:
    commands = readme_commands()
    assert len(commands) >= 15, commands  # the parser found the block
    editor = []
    for index, command in enumerate(commands):
        out_dir = tmp_path / f"run{index}"
        out_dir.mkdir()
        argv = to_argv(command, inputs, out_dir)
        if not argv or (not argv[0].startswith("-") and Path(argv[0]).suffix):
            editor.append((command, argv))  # the editor, with or without an image
            continue
        code, out, err = run_in_process(argv, capsys)
        assert code == 0, f"README command {command!r} failed ({code}): {err.strip()[-400:]}"
        if argv == ["--version"]:
            assert out.startswith("studio ")
        if argv[:2] == ["models", "list"]:
            assert "studio-inpaint" in out
        _check_outputs(command, argv, out_dir, inputs)
    assert editor, "the README shows the editor command"
    shown = run_editor([argv for _command, argv in editor], tmp_path / "home")
    for (command, argv), window in zip(editor, shown, strict=True):
        expected = Path(argv[0]).name if argv else "sample.jpg"
        assert expected in window["title"] and window["size"], (command, window)


def test_an_unmapped_file_name_fails_the_test(inputs, tmp_path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"no test mapping for 'photo\.tiff'"):
        to_argv("studio upscale photo.tiff out.png", inputs, tmp_path)
    argv = to_argv("studio upscale in.png out.png --width 3000", inputs, tmp_path)
    assert argv[1] == str(inputs["tiny.png"]) and argv[-1] == "48"
