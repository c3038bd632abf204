"""Read GCompris (Qt) resource bundles and Debian machine-readable copyright files.

GCompris ships its images inside Qt binary resource files (``/usr/share/gcompris-qt/rcc/*.rcc``
in Debian's ``gcompris-qt-data``). Qt itself reads them: a bundle is registered under a private
root in the resource file system (``:/<root>/...``), walked with ``QDirIterator`` and read with
``QFile``. No ``QCoreApplication`` is needed for that.

The DEP-5 helpers (:func:`parse_dep5`, :func:`dep5_license`) are generic: they read the
``/usr/share/doc/<pkg>/copyright`` file of any Debian package.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PySide6.QtCore import QDirIterator, QFile, QIODevice, QResource

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class RccBundle:
    """One registered ``.rcc`` file; use as a context manager.

    Paths returned by :meth:`files` are relative to the bundle root, e.g.
    ``gcompris/src/activities/erase/resource/gorilla.webp``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(Path(path).resolve())
        digest = hashlib.sha1(self.path.encode()).hexdigest()[:12]
        self.root = f"/studio_rcc_{digest}"
        self._registered = False

    def __enter__(self) -> RccBundle:
        if not QResource.registerResource(self.path, self.root):
            raise OSError(f"Qt could not register resource file {self.path}")
        self._registered = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._registered:
            QResource.unregisterResource(self.path, self.root)
            self._registered = False

    def files(self, suffixes: Iterable[str] | None = None) -> list[str]:
        """Sorted relative paths of the files in the bundle, filtered by lower-case suffix."""
        wanted = tuple(s.lower() for s in suffixes) if suffixes else None
        prefix = f":{self.root}/"
        it = QDirIterator(f":{self.root}", QDirIterator.IteratorFlag.Subdirectories)
        out = []
        while it.hasNext():
            name = it.next()
            if it.fileInfo().isDir() or not name.startswith(prefix):
                continue
            rel = name[len(prefix) :]
            if wanted is None or rel.lower().endswith(wanted):
                out.append(rel)
        return sorted(out)

    def read(self, rel: str) -> bytes:
        """Bytes of one file (relative path as given by :meth:`files`)."""
        f = QFile(f":{self.root}/{rel}")
        if not f.open(QIODevice.OpenModeFlag.ReadOnly):
            raise FileNotFoundError(rel)
        try:
            return bytes(f.readAll().data())
        finally:
            f.close()


def iter_rcc_files(
    rcc_dir: str | Path, suffixes: Iterable[str] = RASTER_SUFFIXES
) -> Iterator[tuple[str, str, bytes]]:
    """Yield ``(bundle_name, relative_path, data)`` for every matching file of every bundle."""
    suffixes = tuple(suffixes)
    for rcc in sorted(Path(rcc_dir).glob("*.rcc")):
        with RccBundle(rcc) as bundle:
            for rel in bundle.files(suffixes):
                yield rcc.stem, rel, bundle.read(rel)


def source_path(rel: str) -> str:
    """Upstream source path of a resource (``gcompris/src/...`` -> ``src/...``)."""
    return rel.split("gcompris/", 1)[1] if rel.startswith("gcompris/") else rel


@dataclass(frozen=True)
class Dep5Stanza:
    """One ``Files:`` paragraph of a DEP-5 copyright file."""

    patterns: tuple[str, ...]
    copyright: str
    license: str


def parse_dep5(text: str) -> list[Dep5Stanza]:
    """Parse the ``Files:`` paragraphs of a DEP-5 (copyright-format 1.0) file, in file order."""
    stanzas = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields:
            lic = fields.get("license", "").split("\n", 1)[0].strip()
            stanzas.append(
                Dep5Stanza(tuple(fields["files"].split()), fields.get("copyright", "").strip(), lic)
            )
    return stanzas


def _matches(pattern: str, path: str) -> bool:
    # DEP-5 '*' matches across '/', like fnmatch; also accept a pattern that names the same file
    # under an older extension (GCompris' copyright lists .jpg/.png, the package ships .webp).
    if fnmatch.fnmatchcase(path, pattern):
        return True
    stem = str(PurePosixPath(path).with_suffix(""))
    pat = PurePosixPath(pattern)
    return "*" not in pattern and pat.suffix != "" and str(pat.with_suffix("")) == stem


def dep5_license(stanzas: list[Dep5Stanza], path: str) -> Dep5Stanza | None:
    """The stanza that governs ``path``: the last matching one, as DEP-5 specifies."""
    found = None
    for st in stanzas:
        if any(_matches(p, path) for p in st.patterns):
            found = st
    return found
