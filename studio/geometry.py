"""Integer rectangles in image pixel coordinates, shared by the document, engine and UI."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rect:
    """Half-open pixel rectangle: columns ``x .. x+w-1``, rows ``y .. y+h-1``."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def from_size(cls, width: int, height: int) -> Rect:
        return cls(0, 0, width, height)

    @classmethod
    def from_edges(cls, x0: int, y0: int, x1: int, y1: int) -> Rect:
        """Rectangle from inclusive-exclusive edges; empty when x1 <= x0 or y1 <= y0."""
        return cls(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def area(self) -> int:
        return self.w * self.h

    def is_empty(self) -> bool:
        return self.w <= 0 or self.h <= 0

    def intersect(self, other: Rect) -> Rect:
        return Rect.from_edges(
            max(self.x, other.x),
            max(self.y, other.y),
            min(self.right, other.right),
            min(self.bottom, other.bottom),
        )

    def union(self, other: Rect) -> Rect:
        if self.is_empty():
            return other
        if other.is_empty():
            return self
        return Rect.from_edges(
            min(self.x, other.x),
            min(self.y, other.y),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
        )

    def grow(self, margin: int) -> Rect:
        return Rect(self.x - margin, self.y - margin, self.w + 2 * margin, self.h + 2 * margin)

    def translate(self, dx: int, dy: int) -> Rect:
        return Rect(self.x + dx, self.y + dy, self.w, self.h)

    def scale(self, factor: int) -> Rect:
        return Rect(self.x * factor, self.y * factor, self.w * factor, self.h * factor)

    def contains(self, other: Rect) -> bool:
        return self.intersect(other) == other

    @property
    def slices(self) -> tuple[slice, slice]:
        """``array[rect.slices]`` selects the rectangle from a row-major HxW(xC) array."""
        return slice(self.y, self.bottom), slice(self.x, self.right)

    def tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def union_all(rects: Iterable[Rect]) -> Rect:
    """Bounding box of all rectangles (empty when there are none)."""
    out = Rect(0, 0, 0, 0)
    for r in rects:
        out = out.union(r)
    return out
