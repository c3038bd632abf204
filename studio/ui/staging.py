"""The staging bar above the canvas: a finished result waits for Accept, Discard or Regenerate.

"Lands as" chooses whether an accepted result becomes a new layer or merges into the active
layer; the main window remembers the choice in the settings. The bar floats over the bottom of
the canvas (showing it never shifts the image), and "Show result" hides the preview so the
artist can see what they paint underneath while deciding.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

LANDING = (("New layer", True), ("Merge into active layer", False))


class StagingBar(QWidget):
    """Emits ``landing_changed(as_new_layer)`` when the artist picks where results land."""

    landing_changed = Signal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.label = QLabel("Result ready")
        self.landing_label = QLabel("Lands as")
        self.landing = QComboBox()
        for text, value in LANDING:
            self.landing.addItem(text, value)
        self.accept_button = QPushButton("Accept (Enter)")
        self.discard_button = QPushButton("Discard (Esc)")
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setToolTip("Run the same job again (a new seed where it has one)")
        self.show_result = QPushButton("Show result")
        self.show_result.setCheckable(True)
        self.show_result.setChecked(True)
        self.show_result.setToolTip("Hide the preview to see (and paint on) the image under it")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.show_result)
        layout.addWidget(self.landing_label)
        layout.addWidget(self.landing)
        layout.addWidget(self.accept_button)
        layout.addWidget(self.discard_button)
        layout.addWidget(self.regenerate_button)
        self.setStyleSheet(
            "StagingBar { background: rgba(46, 52, 64, 235); border-radius: 6px; } "
            "QLabel { color: white; }"
        )
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.landing.currentIndexChanged.connect(
            lambda _i: self.landing_changed.emit(bool(self.landing.currentData()))
        )

    def set_landing(self, as_new_layer: bool) -> None:
        with QSignalBlocker(self.landing):
            self.landing.setCurrentIndex(self.landing.findData(as_new_layer))

    def show_for(self, text: str, landing_applies: bool) -> None:
        """Show the bar for a result; the landing choice only where it means something."""
        self.label.setText(text)
        self.landing.setVisible(landing_applies)
        self.landing_label.setVisible(landing_applies)
        with QSignalBlocker(self.show_result):
            self.show_result.setChecked(True)
        self.show()
        self.place()
        self.raise_()

    def place(self) -> None:
        """Float along the bottom of the parent (the canvas viewport), 8 px from the edges."""
        parent = self.parentWidget()
        if parent is None:
            return
        self.adjustSize()
        width = min(parent.width() - 16, max(self.sizeHint().width(), 480))
        self.setGeometry(
            8, parent.height() - self.sizeHint().height() - 8, width, self.sizeHint().height()
        )
