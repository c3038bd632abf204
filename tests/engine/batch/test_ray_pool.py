"""The Ray executor on a local two-CPU instance (started once for the module): outputs
byte-identical to the local path, in both ways files travel; failures come back as outcomes."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.engine.batch.contract import BatchItem, BatchSpec, ItemOutcome
from studio.engine.batch.plan import make_spec
from studio.engine.batch.worker import make_processor
from studio.engine.jobs import UpscaleParams
from studio.errors import BadInputError
from studio.task_kind import TaskKind

ray = pytest.importorskip("ray")

from studio.engine.batch.ray_pool import RayExecutor  # noqa: E402

# one thread, fp32, no compiling: the same arithmetic in this process and in every actor
ENGINE = {"device": "cpu", "threads": 1, "precision": "fp32", "compile": "off"}
PARAMS = UpscaleParams(model="studio-photo-x2", scale=2)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (starting one costs seconds); the executor uses
    it and leaves it running, as it does any instance the caller started."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # for _raising_factory
    yield
    ray.shutdown()


def _inputs(folder: Path, count: int) -> list[BatchItem]:
    folder.mkdir()
    rng = np.random.default_rng(16)
    items = []
    for i in range(count):
        path = folder / f"frame-{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(path)
        items.append(BatchItem(key=path.name, output=f"frame-{i:02d}.png", source=str(path)))
    return items


def _spec(out_dir: Path) -> BatchSpec:
    out_dir.mkdir()
    return make_spec(TaskKind.UPSCALE, PARAMS, out_dir, engine=ENGINE)


def _local(spec: BatchSpec, items: list[BatchItem]) -> dict[str, ItemOutcome]:
    process = make_processor(spec)
    return {item.key: process(item) for item in items}


def _by_key(outcomes) -> dict[str, ItemOutcome]:
    found: dict[str, ItemOutcome] = {}
    for outcome in outcomes:
        assert outcome.key not in found, f"{outcome.key} came back twice"
        found[outcome.key] = outcome
    return found


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _with_bad_files(items: list[BatchItem], folder: Path) -> list[BatchItem]:
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    bad = [
        BatchItem(key="corrupt.png", output="corrupt.png", source=str(corrupt)),
        BatchItem(key="gone.png", output="gone.png", source=str(folder / "gone.png")),
    ]
    return items[:2] + bad + items[2:]


@pytest.mark.parametrize("transfer", ["shared", "bytes"])
def test_two_ray_workers_give_the_local_bytes_and_failures(local_ray, tmp_path, transfer) -> None:
    good = _inputs(tmp_path / "in", 5)
    items = _with_bad_files(good, tmp_path / "in")
    local = _local(_spec(tmp_path / "local"), items)
    spec = _spec(tmp_path / "ray")

    outcomes = _by_key(RayExecutor(workers=2, transfer=transfer).run(spec, items))

    assert set(outcomes) == {item.key for item in items}
    assert {k for k, o in outcomes.items() if not o.ok} == {"corrupt.png", "gone.png"}
    for key, outcome in outcomes.items():
        expected = local[key]
        assert (outcome.ok, outcome.output, outcome.input_sha256, outcome.output_sha256) == (
            expected.ok,
            expected.output,
            expected.input_sha256,
            expected.output_sha256,
        )
        # the same one-line reason, naming the artist's file (not a staged copy)
        assert outcome.reason == expected.reason
    assert str(tmp_path / "in" / "gone.png") in outcomes["gone.png"].reason
    # exact: an item's output depends only on (spec, item), not on where it ran; nothing else
    # (staging, temporary files) is left in the output folder
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    assert sorted(_files(tmp_path / "ray")) == sorted(item.output for item in good)


def _raising_factory(spec: BatchSpec):
    process = make_processor(spec)

    def processor(item: BatchItem) -> ItemOutcome:
        if item.key.endswith("01.png"):
            raise RuntimeError("a bug in a processor\nwith a second line")
        return process(item)

    return processor


def test_a_processor_that_raises_fails_its_item_only(local_ray, tmp_path) -> None:
    items = _inputs(tmp_path / "in", 3)
    executor = RayExecutor(workers=2, make_processor=_raising_factory)

    outcomes = _by_key(executor.run(_spec(tmp_path / "ray"), items))

    assert [k for k, o in sorted(outcomes.items()) if not o.ok] == ["frame-01.png"]
    assert "a bug in a processor" in outcomes["frame-01.png"].reason


def test_closing_early_cancels_the_rest(local_ray, tmp_path) -> None:
    items = _inputs(tmp_path / "in", 6)
    run = RayExecutor(workers=2).run(_spec(tmp_path / "ray"), items)

    first = next(run)
    run.close()  # what Ctrl-C in the consumer does to the generator

    assert first.ok
    assert len(list((tmp_path / "ray").glob("*.png"))) < len(items)
    assert ray.is_initialized()  # the caller's instance is left running


def test_bad_settings_are_one_clear_error() -> None:
    with pytest.raises(BadInputError, match="transfer"):
        RayExecutor(transfer="ftp")
    with pytest.raises(BadInputError, match="workers"):
        RayExecutor(workers=0)


def test_outputs_hash_like_the_manifest(tmp_path) -> None:
    # the driver checks transferred bytes against output_sha256: the same hash the worker takes
    from studio.engine.batch.manifest import file_sha256

    path = tmp_path / "x.bin"
    path.write_bytes(b"studio")
    assert file_sha256(path) == hashlib.sha256(b"studio").hexdigest()


class _SizingRay:
    """Just enough of ``ray`` to see which actors :class:`RayExecutor` asks for."""

    def __init__(self, nodes: list[dict]) -> None:
        self._nodes = nodes
        self.options: dict = {}
        self.specs: list[BatchSpec] = []

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": r} for r in self._nodes]

    def cluster_resources(self) -> dict:
        total: dict = {}
        for r in self._nodes:
            for k, v in r.items():
                total[k] = total.get(k, 0) + v
        return total

    def remote(self, **options):
        self.options = options
        fake = self

        class Handle:
            def __init__(self, spec, *_):
                fake.specs.append(spec)
                self.ready = type("M", (), {"remote": staticmethod(lambda: None)})

        return lambda cls: type("Remote", (), {"remote": staticmethod(Handle)})

    def get(self, refs):
        return refs


def test_one_actor_per_gpu_with_its_nodes_cores_per_gpu(tmp_path) -> None:
    # a CPU-only head and two 4-GPU nodes: 8 actors, one GPU and one reserved core each
    fake = _SizingRay([{"CPU": 64}, {"CPU": 16, "GPU": 4}, {"CPU": 32, "GPU": 4}])
    spec = BatchSpec(TaskKind.UPSCALE, PARAMS, str(tmp_path), "x", {"device": "cuda"})

    RayExecutor()._start_actors(fake, spec, staged=True)

    assert len(fake.specs) == 8
    assert (fake.options["num_gpus"], fake.options["num_cpus"]) == (1, 1)
    assert {s.engine["threads"] for s in fake.specs} == {4}  # the smaller node's 16 / 4


def test_cpu_actors_share_the_cores_and_never_outnumber_them(tmp_path) -> None:
    fake = _SizingRay([{"CPU": 8}, {"CPU": 8}])
    spec = BatchSpec(TaskKind.UPSCALE, PARAMS, str(tmp_path), "x")

    RayExecutor(workers=4)._start_actors(fake, spec, staged=False)
    assert (len(fake.specs), fake.options["num_cpus"], fake.specs[0].engine["threads"]) == (4, 4, 4)

    fake.specs.clear()
    RayExecutor(workers=40)._start_actors(fake, spec, staged=False)
    assert (len(fake.specs), fake.options["num_cpus"]) == (16, 1)
