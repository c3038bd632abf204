"""Progressive redraw: big rectangles drawn band by band, visible first, never stale."""

from __future__ import annotations

import numpy as np
import pytest

from studio.geometry import Rect
from studio.ui import band_queue
from studio.ui.band_queue import BandQueue


@pytest.fixture
def small_bands(monkeypatch):
    """Bands of 16 rows of a 128 px wide image; anything over 1000 px is queued."""
    monkeypatch.setattr(band_queue, "BAND_PIXELS", 128 * 16)
    monkeypatch.setattr(band_queue, "SYNC_PIXELS", 1000)


def test_small_rects_are_drawn_at_once_big_ones_queued_visible_first(qtbot, small_bands) -> None:
    done: list[Rect] = []
    queue = BandQueue(lambda: Rect(0, 64, 128, 32))  # the view shows rows 64..96
    queue.register("doc", done.append)
    queue.submit("doc", Rect(0, 0, 20, 20))
    assert done == [Rect(0, 0, 20, 20)] and not queue.busy
    done.clear()
    queue.submit("doc", Rect(0, 0, 128, 96))
    assert queue.busy and done == [], "nothing big happens inside the call"
    qtbot.waitUntil(lambda: not queue.busy, timeout=2000)
    assert [b.y for b in done] == [64, 80, 0, 16, 32, 48]
    assert sum(b.area for b in done) == 128 * 96


def test_a_newer_covering_request_replaces_queued_bands(qtbot, small_bands) -> None:
    done: list[tuple[str, Rect]] = []
    queue = BandQueue(lambda: Rect(0, 0, 0, 0))
    queue.register("doc", lambda b: done.append(("doc", b)))
    queue.register("mask", lambda b: done.append(("mask", b)))
    queue.submit("doc", Rect(0, 0, 128, 64))
    queue.submit("mask", Rect(0, 0, 128, 64))
    queue.submit("doc", Rect(0, 0, 128, 96))  # covers the first: those bands go
    queue.flush()
    assert not queue.busy
    doc = [b for k, b in done if k == "doc"]
    assert len(doc) == 6 and sum(b.area for b in doc) == 128 * 96
    assert len([b for k, b in done if k == "mask"]) == 4
    queue.submit("doc", Rect(0, 0, 128, 96))
    queue.clear()
    assert not queue.busy


def test_hiding_a_layer_redraws_progressively_and_ends_exact(win, qtbot, small_bands) -> None:
    from studio.document import Layer
    from studio.ui.qimage import numpy_to_qimage, qimage_to_numpy

    doc, canvas = win.document, win.canvas
    top = Layer.blank(doc.width, doc.height, "Top")
    top.pixels[:, :, :] = (10, 200, 30, 128)
    doc.add_layer(top)
    qtbot.waitUntil(lambda: not canvas.redraw.busy, timeout=3000)

    def cache() -> np.ndarray:
        return qimage_to_numpy(canvas.doc_item.image)

    def expected() -> np.ndarray:
        return qimage_to_numpy(numpy_to_qimage(doc.composite()))

    np.testing.assert_array_equal(cache(), expected())
    doc.set_layer_props(top.id, visible=False)
    assert canvas.redraw.busy and not np.array_equal(cache(), expected())
    doc.undo()  # shown again before the redraw finished: the queue draws the latest state
    qtbot.waitUntil(lambda: not canvas.redraw.busy, timeout=3000)
    np.testing.assert_array_equal(cache(), expected())
    doc.set_layer_props(top.id, visible=False)
    win.document.replace_content(
        [Layer.blank(64, 32, "New")], np.zeros((32, 64), np.float32), "Resize"
    )  # a size change mid-redraw: the old bands are dropped, not drawn into the new image
    qtbot.waitUntil(lambda: not canvas.redraw.busy, timeout=3000)
    assert canvas.doc_item.image.width() == 64


def test_dirty_rects_merge_only_when_they_touch() -> None:
    from studio.ui.mipmap import MAX_DIRTY_RECTS, add_dirty

    rects = add_dirty([], Rect(0, 512, 100, 256))  # a visible band first
    rects = add_dirty(rects, Rect(0, 0, 100, 256))  # then one far above: kept apart
    assert sorted(r.y for r in rects) == [0, 512]
    rects = add_dirty(rects, Rect(0, 256, 100, 256))  # the gap: all three become one
    assert rects == [Rect(0, 0, 100, 768)]
    many: list[Rect] = []
    for i in range(MAX_DIRTY_RECTS + 1):
        many = add_dirty(many, Rect(10 * i, 0, 5, 5))
    assert many == [Rect(0, 0, 10 * MAX_DIRTY_RECTS + 5, 5)]


def test_mip_levels_stay_exact_after_an_out_of_order_redraw(win, qtbot, small_bands) -> None:
    from studio.document import Layer
    from studio.ui.mipmap import downsample_into
    from studio.ui.qimage import image_view

    doc, canvas = win.document, win.canvas
    item = canvas.doc_item
    item.level_image(1)  # build level 1 before the change
    top = Layer.blank(doc.width, doc.height, "Top")
    top.pixels[:, :, :] = (200, 10, 90, 255)
    top.pixels[40:60, 30:90] = (0, 0, 0, 0)
    doc.add_layer(top)
    qtbot.waitUntil(lambda: not canvas.redraw.busy, timeout=3000)
    level = image_view(item.level_image(1)).copy()
    expected = np.zeros_like(level)
    downsample_into(image_view(item.image), expected, Rect(0, 0, level.shape[1], level.shape[0]))
    np.testing.assert_array_equal(level, expected)
