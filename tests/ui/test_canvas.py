"""The canvas with real mouse, wheel, key and tablet events: pixels and mask values that change."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QNativeGestureEvent, QPointingDevice, QTabletEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from studio.document import MASK, Document

NO = Qt.KeyboardModifier.NoModifier
RED = (255, 0, 0)


def set_brush(win, **kw) -> None:
    win.tools.set_brush("paint", **kw)


def test_a_drag_paints_one_undoable_step(win, pointer, photo) -> None:
    set_brush(win, size=10, hardness=1.0, color=RED, opacity=1.0)
    pointer.drag([(20, 30), (60, 30), (100, 30)])
    px = win.document.active_layer.pixels
    assert (px[30, 22:98, :3] == RED).all(), "the stroke's centre line is painted"
    np.testing.assert_array_equal(px[50:, :, :3], photo[50:], "far from the stroke: untouched")
    assert [s.name for s in win.document.history.steps] == ["Brush"]
    # and what the artist sees is what the document holds (atol 0: 100 % zoom, opaque)
    shown = pointer.rendered()
    p = pointer.at(60, 30)
    assert tuple(shown[p.y(), p.x(), :3]) == RED
    win.undo()
    np.testing.assert_array_equal(px[:, :, :3], photo)
    win.redo()
    assert (px[30, 22:98, :3] == RED).all()


def test_a_fast_diagonal_stroke_leaves_no_gaps(win, pointer) -> None:
    """Two events 150 px apart: the dabs in between are interpolated."""
    set_brush(win, size=4, hardness=1.0, color=RED, spacing=0.25)
    pointer.drag([(5, 5), (125, 95)])
    px = win.document.active_layer.pixels
    for t in np.linspace(0, 1, 400):
        x, y = 5 + 120 * t, 5 + 90 * t
        assert tuple(px[int(y), int(x), :3]) == RED, f"gap at ({x:.1f}, {y:.1f})"
    assert win.document.history.position == 1


def test_eraser_mask_brush_and_mask_eraser(win, pointer, qtbot) -> None:
    doc = win.document
    qtbot.keyClick(win, Qt.Key.Key_E)
    assert win.tools.current == "eraser"
    set_brush(win, size=8, hardness=1.0)
    pointer.drag([(10, 10), (50, 10)])
    assert doc.active_layer.pixels[10, 30, 3] == 0, "erased to transparent"
    qtbot.keyClick(win, Qt.Key.Key_M)
    win.tools.set_brush("mask", size=8, hardness=1.0)
    pointer.drag([(10, 60), (60, 60)])
    assert doc.mask[60, 30] == pytest.approx(1.0) and doc.mask[40, 30] == 0.0
    qtbot.keyClick(win, Qt.Key.Key_X)
    assert win.tools.current == "mask_eraser"
    pointer.drag([(30, 50), (30, 70)])
    assert doc.mask[60, 30] == pytest.approx(0.0, abs=1e-6)
    assert doc.mask[60, 15] == pytest.approx(1.0)
    assert [s.name for s in doc.history.steps] == ["Eraser", "Mask brush", "Mask eraser"]
    win.undo()
    assert doc.mask[60, 30] == pytest.approx(1.0)
    win.undo()
    assert not doc.mask.any()
    win.undo()
    assert doc.active_layer.pixels[10, 30, 3] == 255


def test_alt_click_picks_the_colour_under_the_pointer(win, pointer, photo) -> None:
    pointer.click(40, 20, Qt.KeyboardModifier.AltModifier)
    assert win.tools.brush("paint").color == tuple(int(v) for v in photo[20, 40])
    assert win.document.history.position == 0, "picking is not an edit"


def test_brush_keys_resize_and_switch(win, qtbot) -> None:
    size = win.tools.brush().size
    qtbot.keyClick(win, Qt.Key.Key_BracketRight)
    assert win.tools.brush().size == pytest.approx(size * 1.2, abs=0.1)
    qtbot.keyClick(win, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(win, Qt.Key.Key_BracketLeft)
    assert win.tools.brush().size < size
    assert win.tool_panel.size.value() == pytest.approx(win.tools.brush().size)
    for key, tool in (
        (Qt.Key.Key_M, "mask_brush"),
        (Qt.Key.Key_B, "brush"),
        (Qt.Key.Key_X, "eraser"),
    ):
        qtbot.keyClick(win, key)
        assert win.tools.current == tool
    assert win.canvas.mask_item.isVisible()
    qtbot.keyClick(win, Qt.Key.Key_H)
    assert not win.canvas.mask_item.isVisible() and not win.mask_panel.visible.isChecked()
    qtbot.keyClick(win, Qt.Key.Key_H)
    assert win.canvas.mask_item.isVisible()


def _tablet(canvas, kind, pos, pressure) -> None:
    device = QPointingDevice(
        "test pen",
        99,
        QPointingDevice.DeviceType.Stylus,
        QPointingDevice.PointerType.Pen,
        QPointingDevice.Capability.Position | QPointingDevice.Capability.Pressure,
        1,
        3,
    )
    button = Qt.MouseButton.LeftButton
    buttons = Qt.MouseButton.NoButton if kind == QTabletEvent.Type.TabletRelease else button
    event = QTabletEvent(
        kind, device, QPointF(pos), QPointF(pos), pressure, 0, 0, 0, 0, 0, NO, button, buttons
    )
    QApplication.sendEvent(canvas.viewport(), event)


def test_tablet_pressure_drives_the_brush_size(win, pointer) -> None:
    set_brush(win, size=16, hardness=1.0, color=RED, pressure_size=True)
    canvas = win.canvas
    for y, pressure in ((20, 0.25), (60, 1.0)):
        _tablet(canvas, QTabletEvent.Type.TabletPress, pointer.at(20, y), pressure)
        _tablet(canvas, QTabletEvent.Type.TabletMove, pointer.at(100, y), pressure)
        _tablet(canvas, QTabletEvent.Type.TabletRelease, pointer.at(100, y), pressure)
    px = win.document.active_layer.pixels
    light = int((px[:40, 60, :3] == RED).all(axis=1).sum())
    firm = int((px[40:, 60, :3] == RED).all(axis=1).sum())
    assert 2 <= light <= 5 and 14 <= firm <= 17, (light, firm)
    assert win.document.history.position == 2


def test_painting_outside_the_image_is_clipped_and_harmless(win, pointer) -> None:
    doc = win.document
    set_brush(win, size=10, hardness=1.0, color=RED)
    pointer.drag([(-40, -40), (-10, -20)])
    assert doc.history.position == 0, "a stroke entirely outside changes nothing"
    pointer.drag([(-30, 48), (40, 48)])
    assert (doc.active_layer.pixels[48, 0:38, :3] == RED).all()
    assert doc.history.position == 1
    win.undo()
    assert doc.history.position == 0


def test_ctrl_wheel_zooms_wheel_scrolls_and_keys_fit(win, qtbot) -> None:
    canvas = win.canvas
    big = Document.from_image(np.zeros((2000, 3000, 3), np.uint8))
    win.set_document(big)
    canvas.actual_size()

    def wheel(dy: int, mods) -> None:
        pos = QPointF(200, 200)
        event = QWheelEvent(
            pos,
            canvas.viewport().mapToGlobal(pos),
            QPointF(0, 0).toPoint(),
            QPointF(0, dy).toPoint(),
            Qt.MouseButton.NoButton,
            mods,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(canvas.viewport(), event)

    wheel(120, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom == pytest.approx(1.0015**120)
    zoom = canvas.zoom
    before = canvas.verticalScrollBar().value()
    wheel(-120, NO)
    assert canvas.zoom == zoom and canvas.verticalScrollBar().value() > before
    h_before = canvas.horizontalScrollBar().value()
    wheel(-120, Qt.KeyboardModifier.ShiftModifier)
    assert canvas.horizontalScrollBar().value() > h_before
    qtbot.keyClick(win, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom < 0.5, "fit shows the whole 3000 px image"
    qtbot.keyClick(win, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom == pytest.approx(1.0)
    assert win.zoom_label.text() == "100%"


def test_pinch_zooms(win) -> None:
    canvas = win.canvas
    pos = QPointF(100, 100)
    event = QNativeGestureEvent(
        Qt.NativeGestureType.ZoomNativeGesture,
        QPointingDevice.primaryPointingDevice(),
        2,
        pos,
        pos,
        canvas.viewport().mapToGlobal(pos),
        0.5,
        QPointF(0, 0),
        0,
    )
    QApplication.sendEvent(canvas.viewport(), event)
    assert canvas.zoom == pytest.approx(1.5)


def test_space_drag_and_middle_drag_pan_without_painting(win, pointer, qtbot) -> None:
    canvas = win.canvas
    win.set_document(Document.from_image(np.zeros((2000, 3000, 3), np.uint8)))
    canvas.actual_size()
    bar = canvas.horizontalScrollBar()
    start = bar.value()
    pointer.drag([(500, 500), (400, 500)], button=Qt.MouseButton.MiddleButton)
    assert bar.value() == start + 100
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    pointer.drag([(600, 500), (650, 500)])
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert bar.value() == start + 50
    assert win.document.history.position == 0, "panning never paints"


def test_tab_held_shows_the_original(win, pointer, qtbot, photo) -> None:
    set_brush(win, size=20, hardness=1.0, color=RED)
    pointer.drag([(30, 40), (90, 40)])
    p = pointer.at(60, 40)
    assert tuple(pointer.rendered()[p.y(), p.x(), :3]) == RED
    win.canvas.setFocus()
    qtbot.keyPress(win.canvas, Qt.Key.Key_Tab)
    assert win.compare.item.isVisible()
    assert tuple(pointer.rendered()[p.y(), p.x(), :3]) == tuple(photo[40, 60])
    qtbot.keyRelease(win.canvas, Qt.Key.Key_Tab)
    assert not win.compare.item.isVisible()
    assert win.canvas.hasFocus(), "Tab did not move the focus away"


def test_zoomed_out_views_draw_from_the_mipmap_and_follow_edits(win, pointer) -> None:
    pixels = np.zeros((1024, 1024, 3), np.uint8)
    pixels[:, 512:] = (0, 0, 255)
    win.set_document(Document.from_image(pixels))
    canvas = win.canvas
    canvas.set_zoom(1 / 8)
    shown = pointer.rendered()
    assert canvas.doc_item.last_level == 3, "a 1/8 view reads the 128 px level"
    left, right = pointer.at(200, 500), pointer.at(800, 500)
    assert tuple(shown[left.y(), left.x(), :3]) == (0, 0, 0)
    assert tuple(shown[right.y(), right.x(), :3]) == (0, 0, 255)
    set_brush(win, size=120, hardness=1.0, color=RED)
    pointer.drag([(150, 500), (250, 500)])
    shown = pointer.rendered()
    assert tuple(shown[left.y(), left.x(), :3]) == RED, "the dirty region reached level 3"


def test_a_one_pixel_image_works(win, pointer, tmp_path, qtbot) -> None:
    from PIL import Image

    path = tmp_path / "dot.png"
    Image.fromarray(np.array([[[10, 20, 30]]], np.uint8)).save(path)
    assert win.open_path(path)
    doc = win.document
    assert (doc.width, doc.height) == (1, 1)
    win.canvas.fit()
    set_brush(win, size=5, hardness=1.0, color=RED)
    pointer.drag([(0.5, 0.5), (0.6, 0.5)])
    assert tuple(doc.active_layer.pixels[0, 0, :3]) == RED
    for action in ("select_all", "grow", "shrink", "feather", "invert_mask", "fill_holes"):
        win.actions[action].trigger()
    win.actions["compare"].trigger()
    assert "Too small" in win.compare.readout.text()
    win.undo()


def test_a_20000_px_image_is_refused_with_the_limit_stated(win, tmp_path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    path = tmp_path / "huge.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    before = win.document
    assert not win.open_path(path)
    assert "16384x16384" in (win.last_error or "") and "20000x20000" in win.last_error
    assert win.document is before
    with pytest.raises(ValueError, match="16384x16384"):
        Document(20000, 20000)


def test_mask_overlay_colour_and_target(win, pointer) -> None:
    win.tools.select("mask_brush")
    win.tools.set_brush("mask", size=10, hardness=1.0)
    pointer.drag([(20, 20), (60, 20)])
    win.mask_panel.set_color((0, 0, 255))
    view = win.canvas.mask_item.image
    from studio.ui.qimage import qimage_to_numpy

    overlay = qimage_to_numpy(view)
    assert tuple(overlay[20, 40]) == (0, 0, 255, 255)
    assert win.settings.mask_color == (0, 0, 255)
    assert win.document.mask[20, 40] == pytest.approx(1.0)
    assert MASK in win.document._target_revisions


def test_undo_and_redo_shortcuts(win, pointer, qtbot, photo) -> None:
    ctrl = Qt.KeyboardModifier.ControlModifier
    set_brush(win, size=10, hardness=1.0, color=RED)
    pointer.drag([(20, 30), (100, 30)])
    painted = win.document.active_layer.pixels.copy()
    qtbot.keyClick(win, Qt.Key.Key_Z, ctrl)
    np.testing.assert_array_equal(win.document.active_layer.pixels[:, :, :3], photo)
    qtbot.keyClick(win, Qt.Key.Key_Z, ctrl | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(win.document.active_layer.pixels, painted)
    qtbot.keyClick(win, Qt.Key.Key_Z, ctrl)
    qtbot.keyClick(win, Qt.Key.Key_Y, ctrl)
    np.testing.assert_array_equal(win.document.active_layer.pixels, painted)
    assert win.actions["undo"].text() == "&Undo Brush"


def test_layer_operations_redraw_exactly_what_changed(win) -> None:
    """Layer changes recomposite only their footprint: the canvas cache must still equal the
    document's composite after each one (and after undo/redo)."""
    from studio.document import Layer
    from studio.ui.qimage import numpy_to_qimage, qimage_to_numpy

    doc = win.document

    def assert_cache_matches() -> None:
        cache = qimage_to_numpy(win.canvas.doc_item.image)
        # through the same premultiplied format, so translucent pixels round the same way
        np.testing.assert_array_equal(cache, qimage_to_numpy(numpy_to_qimage(doc.composite())))

    sticker = Layer.blank(doc.width, doc.height, "Sticker")
    sticker.pixels[40:70, 10:50] = (0, 200, 0, 255)
    doc.add_layer(sticker)
    assert_cache_matches()
    doc.add_layer(Layer.blank(doc.width, doc.height, "Empty"))
    doc.set_layer_props(sticker.id, visible=False)
    assert_cache_matches()
    doc.set_layer_props(sticker.id, visible=True, opacity=0.5)
    assert_cache_matches()
    doc.move_layer(doc.index_of(sticker.id), 0)  # under the opaque photo: hidden by it
    assert_cache_matches()
    doc.set_layer_props(doc.layers[1].id, visible=False)  # the photo: reveals the sticker
    assert_cache_matches()
    for _ in range(5):
        doc.undo()
        assert_cache_matches()
    for _ in range(5):
        doc.redo()
        assert_cache_matches()
    doc.remove_layer(sticker.id)
    assert_cache_matches()


def test_brush_cursor_shows_size_and_where_a_soft_brush_fades(win) -> None:
    win.tools.select("brush")

    def rings() -> list[float]:
        polys = win.canvas.cursor_item.path.toSubpathPolygons()
        return sorted(round(p.boundingRect().width() / 2, 1) for p in polys)

    set_brush(win, size=40, hardness=0.5)
    assert rings() == pytest.approx([10.0, 20.0], abs=0.6)
    set_brush(win, size=40, hardness=1.0)
    assert rings() == pytest.approx([20.0], abs=0.6)
    set_brush(win, size=40, hardness=0.95)  # ring 1 px inside the outline at 100 %: not drawn
    assert len(rings()) == 1
    win.tools.select("rect")
    assert rings() == []
