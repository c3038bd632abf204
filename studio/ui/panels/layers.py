"""The Layers panel: the layer stack (top first) with visibility, names, order and opacity.

The panel keeps no state of its own: it rebuilds from the document on every layer change and
blocks its own signals meanwhile, so its edits never echo back. Reorder by dragging a row (or
with the arrow buttons); double-click a name to rename; the checkbox shows or hides a layer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QSignalBlocker, QSize, Qt
from PySide6.QtGui import QAction, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.document import Change, Document, Layer
from studio.ui.qimage import numpy_to_qimage

ICON = 40
LAYER_ID = Qt.ItemDataRole.UserRole


def thumbnail(layer: Layer, side: int = ICON) -> QIcon:
    """A small icon of a layer, sampled with a stride (cheap even for huge layers)."""
    h, w = layer.pixels.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / side)))
    small = np.ascontiguousarray(layer.pixels[::step, ::step])
    return QIcon(QPixmap.fromImage(numpy_to_qimage(small)))


class LayersPanel(QWidget):
    def __init__(self, actions: dict[str, QAction], parent=None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._opacity_before: float | None = None
        self._rebuilding = False
        self.list = QListWidget()
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity_label = QLabel("100 %")
        self.opacity_label.setMinimumWidth(40)
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        row.addWidget(self.opacity_label)
        buttons = QHBoxLayout()
        for key in ("add", "duplicate", "delete", "merge_down", "raise", "lower"):
            button = QToolButton()
            button.setDefaultAction(actions[key])
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        layout.addLayout(buttons)
        self.list.currentRowChanged.connect(self._on_current_row)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.model().rowsMoved.connect(self._on_rows_moved)
        self.opacity.sliderPressed.connect(self._on_opacity_pressed)
        self.opacity.valueChanged.connect(self._on_opacity_value)
        self.opacity.sliderReleased.connect(self._on_opacity_released)
        self.setEnabled(False)

    # -- binding -----------------------------------------------------------------------------
    def set_document(self, doc: Document | None) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        self.document = doc
        if doc is not None:
            self._unsubscribe = doc.subscribe(self._on_change)
        self.setEnabled(doc is not None)
        self.rebuild()

    def _on_change(self, change: Change) -> None:
        if change.kind in ("layers", "layer_name", "active", "size", "history"):
            self.rebuild()

    def row_of(self, index: int) -> int:
        return len(self.document.layers) - 1 - index

    def rebuild(self) -> None:
        """Mirror the document: one row per layer, top layer first."""
        # block the widgets' own signals, never the model's (the view needs those to draw)
        blockers = [QSignalBlocker(self.list), QSignalBlocker(self.opacity)]
        self._rebuilding = True
        self.list.clear()
        doc = self.document
        if doc is not None:
            for layer in reversed(doc.layers):
                item = QListWidgetItem(thumbnail(layer), layer.name)
                item.setData(LAYER_ID, layer.id)
                item.setFlags(
                    Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsEnabled
                    | Qt.ItemFlag.ItemIsEditable
                    | Qt.ItemFlag.ItemIsUserCheckable
                    | Qt.ItemFlag.ItemIsDragEnabled
                )
                item.setCheckState(
                    Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked
                )
                item.setToolTip(f"{layer.name} — {layer.opacity * 100:.0f} % opacity")
                self.list.addItem(item)
            self.list.setCurrentRow(self.row_of(doc.active_index))
            self.opacity.setValue(round(doc.active_layer.opacity * 100))
            self.opacity_label.setText(f"{self.opacity.value()} %")
        self._rebuilding = False
        del blockers

    # -- edits -------------------------------------------------------------------------------
    def _on_current_row(self, row: int) -> None:
        if self.document is not None and row >= 0:
            self.document.set_active(self.row_of(row))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        doc = self.document
        if doc is None:
            return
        layer = doc.layer_by_id(item.data(LAYER_ID))
        visible = item.checkState() == Qt.CheckState.Checked
        if visible != layer.visible:
            doc.set_layer_props(
                layer.id, "Show layer" if visible else "Hide layer", visible=visible
            )
        elif item.text().strip() and item.text() != layer.name:
            doc.rename_layer(layer.id, item.text())
        else:
            self.rebuild()  # an empty name: put the old one back

    def _on_rows_moved(self, _parent, start: int, _end: int, _dest, row: int) -> None:
        """A row was dragged from ``start`` to before ``row`` (list rows, top first)."""
        if self.document is None or self._rebuilding:
            return
        dest_row = row - 1 if row > start else row
        self.move_row(start, dest_row)

    def move_row(self, source_row: int, dest_row: int) -> None:
        doc = self.document
        if doc is None or source_row == dest_row:
            self.rebuild()
            return
        doc.move_layer(self.row_of(source_row), self.row_of(dest_row))
        self.rebuild()

    def _on_opacity_pressed(self) -> None:
        if self.document is not None:
            self._opacity_before = self.document.active_layer.opacity

    def _on_opacity_value(self, value: int) -> None:
        doc = self.document
        self.opacity_label.setText(f"{value} %")
        if doc is None:
            return
        if self.opacity.isSliderDown():  # live while dragging, one undo step on release
            doc.preview_layer_props(doc.active_layer.id, opacity=value / 100)
        else:
            doc.set_layer_props(doc.active_layer.id, "Layer opacity", opacity=value / 100)

    def _on_opacity_released(self) -> None:
        doc, before = self.document, self._opacity_before
        self._opacity_before = None
        if doc is None or before is None:
            return
        value = self.opacity.value() / 100
        doc.set_layer_props(
            doc.active_layer.id, "Layer opacity", before={"opacity": before}, opacity=value
        )
