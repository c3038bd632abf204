"""A QGraphicsItem that draws a big premultiplied QImage fast at any zoom.

Zoomed in or at 100 % it blits the exposed part of the full-resolution image. Zoomed out it
draws from a mipmap: copies at 1/2, 1/4, ... resolution, built on first use and then kept up to
date only inside the rectangles marked dirty (2x2 box averages of premultiplied pixels, which is
exact for premultiplied colour). Drawing an 8k image at 10 % therefore reads a ~1k image, and a
brush dab costs a few hundred pixels per level instead of a rescale of the whole image.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from studio.geometry import Rect, union_all
from studio.ui.qimage import blank_canvas_image, image_view

#: no mip level smaller than this on its longer side
MIN_LEVEL_SIDE = 32


def checker_brush() -> QBrush:
    tile = QPixmap(16, 16)
    tile.fill(QColor(204, 204, 204))
    p = QPainter(tile)
    p.fillRect(0, 0, 8, 8, QColor(153, 153, 153))
    p.fillRect(8, 8, 8, 8, QColor(153, 153, 153))
    p.end()
    return QBrush(tile)


def downsample_into(src: np.ndarray, dst: np.ndarray, rect: Rect) -> None:
    """Write 2x2 averages of ``src`` (HxWx4 uint8) into ``dst[rect]`` (dst is half size,
    rounded up; a missing last row or column repeats the edge)."""
    sh, sw = src.shape[:2]
    y0, y1 = 2 * rect.y, min(2 * rect.bottom, sh)
    x0, x1 = 2 * rect.x, min(2 * rect.right, sw)
    block = src[y0:y1, x0:x1]
    if block.shape[0] != 2 * rect.h or block.shape[1] != 2 * rect.w:
        block = np.pad(
            block,
            ((0, 2 * rect.h - block.shape[0]), (0, 2 * rect.w - block.shape[1]), (0, 0)),
            mode="edge",
        )
    acc = block[0::2, 0::2].astype(np.uint16)
    acc += block[1::2, 0::2]
    acc += block[0::2, 1::2]
    acc += block[1::2, 1::2]
    acc += 2
    acc >>= 2
    dst[rect.slices] = acc


#: more separate dirty rectangles than this per level collapse into their bounding box
MAX_DIRTY_RECTS = 8


def add_dirty(rects: list[Rect], rect: Rect) -> list[Rect]:
    """``rects`` with ``rect`` added: rectangles that overlap or touch it merge into their
    bounding box; separate ones stay separate (bands redrawn out of order, visible first, must
    not turn into one box spanning the image: its mip rebuild would stall a paint)."""
    keep = list(rects)
    merged = rect
    grew = True
    while grew:
        grew = False
        for r in keep:
            if not r.grow(1).intersect(merged).is_empty():
                merged = merged.union(r)
                keep.remove(r)
                grew = True
                break
    keep.append(merged)
    return keep if len(keep) <= MAX_DIRTY_RECTS else [union_all(keep)]


class MipImageItem(QGraphicsItem):
    """Draws ``image`` stretched over ``display_size`` (item coordinates), mipmapped.

    Call :meth:`mark_dirty` with a rectangle of image pixels after writing into ``image``.
    ``clip_right`` (item coordinates) limits drawing to the part left of it (compare view).
    """

    def __init__(self, image: QImage, checker: bool = False) -> None:
        super().__init__()
        self.image = image
        self.checker = checker_brush() if checker else None
        self.display_size = (image.width(), image.height())
        self.clip_right: float | None = None
        #: nothing drawn yet (a fresh, fully transparent image): paint and mips are skipped
        self.empty = True
        self._levels: list[QImage] = []  # level k (k >= 1) at index k - 1
        self._dirty: list[list[Rect]] = []  # per level, in level-0 pixel coordinates
        #: where the image may hold pixels (level-0 coordinates); new levels only downsample
        #: this part, so a large, mostly blank preview does not stall its first paint
        self._content = Rect(0, 0, image.width(), image.height())
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        self.last_level = 0  # the level the last paint used (tests and the benchmark read it)

    # -- content -----------------------------------------------------------------------------
    def set_image(
        self, image: QImage, display_size: tuple[int, int] | None = None, blank: bool = True
    ) -> None:
        """Show ``image``; ``blank`` means fully transparent until :meth:`mark_dirty` says
        otherwise (the usual case: a fresh canvas or preview filled in afterwards)."""
        self.prepareGeometryChange()
        self.image = image
        self.display_size = display_size or (image.width(), image.height())
        self.empty = blank
        self._content = Rect(0, 0, 0, 0) if blank else Rect(0, 0, image.width(), image.height())
        self._levels.clear()
        self._dirty.clear()
        self.update()

    def mark_dirty(self, rect: Rect, eager: bool = False) -> None:
        """Pixels of ``image`` inside ``rect`` changed: invalidate mips and repaint.

        ``eager``: bring the levels already built up to date now rather than at the next
        paint. Bands of a big progressive redraw use it: off-screen bands get no paint, and
        their accumulated mip work would otherwise fall on one later paint.
        """
        rect = rect.intersect(Rect(0, 0, self.image.width(), self.image.height()))
        if rect.is_empty():
            return
        self.empty = False
        self._content = self._content.union(rect)
        self._dirty = [add_dirty(d, rect) for d in self._dirty]
        if eager:
            for k in range(1, len(self._levels) + 1):
                self.level_image(k)
        sx, sy = self._ratio()
        self.update(QRectF(rect.x / sx, rect.y / sy, rect.w / sx, rect.h / sy))

    def _ratio(self) -> tuple[float, float]:
        """Image pixels per item unit along x and y."""
        return (
            self.image.width() / max(self.display_size[0], 1),
            self.image.height() / max(self.display_size[1], 1),
        )

    # -- mip levels --------------------------------------------------------------------------
    def max_level(self) -> int:
        side = max(self.image.width(), self.image.height())
        return max(0, math.floor(math.log2(max(side, 1) / MIN_LEVEL_SIDE)))

    def level_image(self, k: int) -> QImage:
        """Level ``k`` (0 = the image itself), built or brought up to date as needed."""
        if k <= 0:
            return self.image
        while len(self._levels) < k:  # build missing levels from the one below
            below = self.level_image(len(self._levels))
            w, h = (below.width() + 1) // 2, (below.height() + 1) // 2
            level = blank_canvas_image(w, h)
            f = 1 << (len(self._levels) + 1)
            c = self._content
            box = Rect.from_edges(c.x // f, c.y // f, -(-c.right // f), -(-c.bottom // f))
            box = box.intersect(Rect(0, 0, w, h))
            if not box.is_empty():
                downsample_into(image_view(below), image_view(level), box)
            self._levels.append(level)
            self._dirty.append([])
        if self._dirty[k - 1]:
            below = self.level_image(k - 1)
            level = self._levels[k - 1]
            f = 1 << k
            for dirty in self._dirty[k - 1]:
                box = Rect.from_edges(
                    dirty.x // f, dirty.y // f, -(-dirty.right // f), -(-dirty.bottom // f)
                ).intersect(Rect(0, 0, level.width(), level.height()))
                if not box.is_empty():
                    downsample_into(image_view(below), image_view(level), box)
            self._dirty[k - 1] = []
        return self._levels[k - 1]

    def level_for(self, device_per_image_px: float) -> int:
        """The coarsest level still at least as sharp as the screen at this zoom."""
        if device_per_image_px >= 1.0 or device_per_image_px <= 0:
            return 0
        return min(math.floor(math.log2(1.0 / device_per_image_px) + 1e-9), self.max_level())

    # -- QGraphicsItem -------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self.display_size)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        exposed = option.exposedRect.intersected(self.boundingRect())
        if self.empty and self.checker is None:
            return
        if self.clip_right is not None:
            exposed = exposed.intersected(QRectF(0, 0, self.clip_right, self.display_size[1]))
        if exposed.isEmpty():
            return
        if self.checker is not None:
            painter.fillRect(exposed, self.checker)
        sx, sy = self._ratio()
        zoom = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        k = self.level_for(zoom / max(sx, 1e-9))
        self.last_level = k
        image = self.level_image(k)
        f = 1 << k
        source = QRectF(
            exposed.x() * sx / f,
            exposed.y() * sy / f,
            exposed.width() * sx / f,
            exposed.height() * sy / f,
        )
        scale = zoom * f / max(sx, 1e-9)  # device pixels per level pixel
        # smooth when shrinking or mildly enlarging; from 200 % on, show crisp pixels
        painter.setRenderHint(
            QPainter.RenderHint.SmoothPixmapTransform, scale < 2.0 and abs(scale - 1.0) > 1e-6
        )
        painter.drawImage(exposed, image, source)
