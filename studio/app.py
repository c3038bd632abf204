"""Build the application: QApplication, the engine thread, the main window; clean shutdown."""

from __future__ import annotations

import sys
import traceback

from studio.paths import sample_image


def run_gui(image_path: str | None = None) -> int:
    """Open the editor (on ``image_path`` or the bundled sample) and run until it closes.

    The window is built before the engine thread starts, and the thread is stopped on every
    way out, so a failure while starting is one line on stderr and exit status 1, never Qt's
    abort for a QThread destroyed while still running.
    """
    from studio.qt_binding import known_bad_binding

    problem = known_bad_binding()  # before Qt loads: a known-crashing binding is named first
    if problem:
        print(f"studio: warning: {problem}", file=sys.stderr)

    from PySide6.QtWidgets import QApplication

    from studio.engine.config import EngineConfig, use_compile_cache
    from studio.engine.thread import EngineThread
    from studio.paths import user_data_dir
    from studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    # bad environment values are warned about now, once, rather than at the first job
    config = EngineConfig.from_environment(interactive=True, data_dir=user_data_dir())
    use_compile_cache(config)
    engine = EngineThread(config=config)
    try:
        try:
            window = MainWindow(engine)
            engine.start()
            _install_excepthook(window)
            window.show()
            if problem:
                window.show_error("This Qt binding is known to crash", problem)
            restored = window.offer_recovery()  # work a crash left behind comes first
            path = image_path or (str(sample_image()) if sample_image().exists() else None)
            if path and not restored:
                window.open_path(path)
        except Exception as exc:
            print(f"studio: error: the editor could not start: {_describe(exc)}", file=sys.stderr)
            return 1
        return app.exec()
    finally:
        if not engine.shutdown(10000):
            print("studio: the engine did not stop within 10 s", file=sys.stderr)


def _describe(exc: BaseException) -> str:
    """One line naming the error: the artist-facing text of a StudioError, else type and text."""
    from studio.errors import StudioError

    text = " ".join(str(exc).split())
    if isinstance(exc, StudioError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
