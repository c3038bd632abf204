"""Build the application: QApplication, the engine thread, the main window; clean shutdown."""

from __future__ import annotations

import sys
import traceback

from studio.paths import sample_image


def run_gui(image_path: str | None = None) -> int:
    """Open the editor (on ``image_path`` or the bundled sample) and run until it closes."""
    from PySide6.QtWidgets import QApplication

    from studio.engine.thread import EngineThread
    from studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    engine = EngineThread(interactive=True)
    engine.start()
    window = MainWindow(engine)
    _install_excepthook(window)
    window.show()
    path = image_path or (str(sample_image()) if sample_image().exists() else None)
    if path:
        window.open_path(path)
    try:
        return app.exec()
    finally:
        if not engine.shutdown(10000):
            print("studio: the engine did not stop within 10 s", file=sys.stderr)


def _install_excepthook(window) -> None:
    """An unexpected error in a slot shows a message box instead of killing the app."""

    def hook(exc_type, exc, tb) -> None:
        traceback.print_exception(exc_type, exc, tb)
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        window.show_error(
            "Something went wrong",
            f"{exc_type.__name__}: {exc}\n\n"
            "Your document is intact. Details were printed to the terminal.",
        )

    sys.excepthook = hook


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_gui(sys.argv[1] if len(sys.argv) > 1 else None))
