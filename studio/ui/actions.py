"""Menus, shortcuts and the actions behind them, built once for the main window.

Shortcuts follow Krita / GIMP / Photoshop where they agree: Ctrl+Z undo, Ctrl+Shift+Z and
Ctrl+Y redo, Ctrl+0 fit, Ctrl+1 100 %, B brush, E eraser, [ and ] brush size, Ctrl+A select
all, Ctrl+D / Ctrl+Shift+A deselect, Ctrl+Shift+I invert, Ctrl+J duplicate layer, Ctrl+E merge
down. M is the mask brush, X swaps paint and erase, H hides the mask, C toggles compare, W is the
magic wand and Shift+W object select.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from studio.ui.tools import (
    BRUSH,
    ELLIPSE,
    ERASER,
    LASSO,
    MAGIC_WAND,
    MASK_BRUSH,
    MASK_ERASER,
    MASK_FILL,
    OBJECT_SELECT,
    POLYGON,
    RECT,
    TOOL_NAMES,
)

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

TOOL_KEYS = {
    BRUSH: "B",
    ERASER: "E",
    MASK_BRUSH: "M",
    MASK_ERASER: "Shift+M",
    RECT: "R",
    ELLIPSE: "O",
    LASSO: "L",
    POLYGON: "P",
    MASK_FILL: "F",
    MAGIC_WAND: "W",  # Photoshop's key for its magic wand and object selection
    OBJECT_SELECT: "Shift+W",
}


def build_actions(w: MainWindow) -> tuple[dict[str, QAction], dict[str, QAction]]:
    """Create the menu bar; returns (named actions, tool actions by tool id)."""
    acts: dict[str, QAction] = {}
    mb = w.menuBar()

    def add(key: str, text: str, slot: Callable, *keys, menu=None, tip: str = "") -> QAction:
        action = QAction(text, w)
        action.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        w.addAction(action)
        if menu is not None:
            menu.addAction(action)
        acts[key] = action
        return action

    file_menu = mb.addMenu("&File")
    add("new", "&New…", w.new_document, QKeySequence.StandardKey.New, menu=file_menu)
    add("open", "&Open…", w.open_dialog, QKeySequence.StandardKey.Open, menu=file_menu)
    w.recent_menu = file_menu.addMenu("Open &Recent")
    add("save", "&Save", w.save, "Ctrl+S", menu=file_menu, tip="Save the layered project (.ora)")
    add("save_as", "Save &As…", w.save_as, "Ctrl+Shift+S", menu=file_menu)
    add("export", "&Export…", w.export_dialog, "Ctrl+Shift+E", menu=file_menu)
    file_menu.addSeparator()
    add(
        "import_mask",
        "Import mask…",
        w.import_mask_dialog,
        menu=file_menu,
        tip="Load a mask PNG (white or opaque = edit)",
    )
    add(
        "export_mask",
        "Export mask…",
        w.export_mask_dialog,
        menu=file_menu,
        tip="Save the mask as an 8-bit grayscale PNG (white = edit)",
    )
    file_menu.addSeparator()
    add(
        "batch",
        "&Batch…",
        w.open_batch_dialog,
        menu=file_menu,
        tip="Run the current task panel's settings over a folder, in the background",
    )
    file_menu.addSeparator()
    add("close", "&Close", w.close, "Ctrl+W", menu=file_menu)
    add("quit", "&Quit", w.close, QKeySequence.StandardKey.Quit, menu=file_menu)

    edit = mb.addMenu("&Edit")
    add("undo", "&Undo", w.undo, "Ctrl+Z", menu=edit)
    add("redo", "&Redo", w.redo, "Ctrl+Shift+Z", "Ctrl+Y", menu=edit)
    edit.addSeparator()
    add("copy", "&Copy", w.copy_image, "Ctrl+C", menu=edit, tip="Copy the selection or canvas")
    add("paste", "&Paste as layer", w.paste_image, "Ctrl+V", menu=edit)

    view = mb.addMenu("&View")
    c = w.canvas
    add("zoom_in", "Zoom &in", lambda: c.zoom_by(1.25), "Ctrl+=", "Ctrl++", menu=view)
    add("zoom_out", "Zoom &out", lambda: c.zoom_by(0.8), "Ctrl+-", menu=view)
    add("fit", "&Fit to window", c.fit, "Ctrl+0", menu=view)
    add("actual", "&Actual size (100%)", c.actual_size, "Ctrl+1", menu=view)
    view.addSeparator()
    mask_toggle = add("toggle_mask", "Show &mask", lambda: None, "H", menu=view)
    mask_toggle.setCheckable(True)
    mask_toggle.setChecked(True)
    mask_toggle.toggled.connect(w.canvas.set_mask_visible)
    compare = add(
        "compare",
        "&Compare before/after",
        lambda: None,
        "C",
        menu=view,
        tip="Split view: the original left of a draggable divider; PSNR and SSIM. "
        "Hold Tab to see the whole original.",
    )
    compare.setCheckable(True)
    compare.toggled.connect(w.compare.set_enabled)
    w.view_menu = view

    tools_menu = mb.addMenu("&Tools")
    group = QActionGroup(w)
    tool_acts: dict[str, QAction] = {}
    for tool_id, name in TOOL_NAMES.items():
        action = add(
            f"tool_{tool_id}",
            name,
            lambda t=tool_id: w.tools.select(t),
            TOOL_KEYS[tool_id],
            menu=tools_menu,
            tip=f"{name} ({TOOL_KEYS[tool_id]})",
        )
        action.setCheckable(True)
        group.addAction(action)
        tool_acts[tool_id] = action
    tools_menu.addSeparator()
    add("swap", "Swap paint / erase", w.tools.swap_erase, "X", menu=tools_menu)
    add("smaller", "Smaller brush", lambda: w.tools.scale_brush(1 / 1.2), "[", menu=tools_menu)
    add("bigger", "Bigger brush", lambda: w.tools.scale_brush(1.2), "]", menu=tools_menu)

    select = mb.addMenu("&Select")
    add("select_all", "Select &all", w.select_all, "Ctrl+A", menu=select, tip="Mask everything")
    add(
        "clear_mask",
        "&Clear mask",
        w.clear_mask,
        "Ctrl+D",
        "Ctrl+Shift+A",
        menu=select,
        tip="Unmask everything",
    )
    add("invert_mask", "&Invert mask", w.invert_mask, "Ctrl+Shift+I", menu=select)
    add(
        "fill_holes",
        "&Fill enclosed areas",
        w.fill_holes,
        menu=select,
        tip="Fill every unmasked area the mask encloses",
    )
    select.addSeparator()
    add("grow", "&Grow", w.grow_mask, menu=select, tip="Grow the mask by the amount set")
    add("shrink", "&Shrink", w.shrink_mask, menu=select, tip="Shrink the mask by the amount set")
    add(
        "feather",
        "F&eather",
        w.feather_mask,
        "Shift+F6",
        menu=select,
        tip="Soften the mask's edges by the amount set",
    )

    layer = mb.addMenu("&Layer")
    add("add", "&New layer", w.add_layer, "Ctrl+Shift+N", menu=layer, tip="New empty layer")
    add(
        "duplicate",
        "&Duplicate",
        w.duplicate_layer,
        "Ctrl+J",
        menu=layer,
        tip="Duplicate the active layer",
    )
    add("delete", "De&lete", w.delete_layer, menu=layer, tip="Delete the active layer")
    add(
        "merge_down",
        "&Merge down",
        w.merge_down,
        "Ctrl+E",
        menu=layer,
        tip="Merge the active layer into the one below",
    )
    add("raise", "&Raise", lambda: w.move_layer(+1), "Ctrl+]", menu=layer, tip="Move up")
    add("lower", "L&ower", lambda: w.move_layer(-1), "Ctrl+[", menu=layer, tip="Move down")
    for key, label in (
        ("add", "New"),
        ("duplicate", "Copy"),
        ("delete", "Delete"),
        ("merge_down", "Merge ↓"),
        ("raise", "▲"),
        ("lower", "▼"),
    ):
        acts[key].setIconText(label)

    add("accept", "Accept result", w.accept_result, "Return", "Enter")
    add("discard", "Discard result", w.escape, "Escape")
    add("regenerate", "Regenerate", w.regenerate, "Ctrl+R")
    acts["accept"].setEnabled(False)
    return acts, tool_acts
