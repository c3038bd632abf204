"""Exemplar-based inpainting with a multi-scale PatchMatch, vectorised in numpy.

The method of Wexler, Shechtman and Irani (2007) with Barnes et al.'s PatchMatch (2009) for the
nearest-neighbour search: from the coarsest pyramid level up, alternate (1) a search that gives
every patch touching the hole the most similar patch lying entirely in the known region, and (2)
a vote in which every hole pixel becomes the weighted mean of what the overlapping matched
patches say it should be. It copies real texture from elsewhere in the image instead of
smearing the border inwards, as diffusion methods (Telea, Navier-Stokes) do.

PatchMatch's propagation is sequential in the paper (scan order). Here every patch takes its
candidates from its four neighbours' shifted matches at once (a Jacobi-style sweep), which
vectorises over all patches and converges in a few more iterations.

Contract: image HxWx3 float32 in [0, 1], mask HxW float (> 0.5 = fill); returns a new HxWx3
float32 image equal to the input outside the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from studio import pixels

PATCH = 7
R = PATCH // 2
_OFFSETS = [(dy, dx) for dy in range(-R, R + 1) for dx in range(-R, R + 1)]


def patchmatch_inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    seed: int = 0,
    min_size: int = 24,
    iterations: int = 6,
    init: np.ndarray | None = None,
    guide_weight: float = 0.0,
) -> np.ndarray:
    """Fill ``mask`` in ``image`` with texture copied from the rest of the image.

    ``init`` (HxWx3 float32, optional): a first fill of the hole (e.g. a learned network's) to
    start from instead of Telea's; with ``guide_weight`` > 0 every patch is also matched on the
    low-pass of ``init`` (sampled at its centre and four corners), so the copied texture keeps
    the structure of that fill instead of drifting to whatever the borders suggest.
    """
    hole = _check(image, mask)
    if not hole.any():
        return image.astype(np.float32, copy=True)
    estimate, _solver, _nnf = synthesise(
        image, hole, seed, min_size, iterations, init, guide_weight
    )
    out = image.astype(np.float32, copy=True)
    out[hole] = estimate[hole]
    return out


def _check(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected HxWx3 image, got {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    hole = mask > 0.5
    if hole.all():
        raise ValueError("PatchMatch needs some known pixels to copy from; the mask covers all")
    return hole


def synthesise(
    image: np.ndarray,
    hole: np.ndarray,
    seed: int = 0,
    min_size: int = 24,
    iterations: int = 6,
    init: np.ndarray | None = None,
    guide_weight: float = 0.0,
    finest_iterations: int | None = None,
) -> tuple[np.ndarray, _Level, np.ndarray]:
    """The multi-scale search and vote; returns (estimate, finest level, its nearest-neighbour
    field: one source centre (y, x) per ``level.targets`` row)."""
    rng = np.random.default_rng(seed)
    images, holes = _pyramid(image.astype(np.float32), hole, min_size)
    guides = None
    if init is not None:
        start = image.astype(np.float32, copy=True)
        start[hole] = init[hole]
        guides = [start]
        for _ in range(1, len(images)):
            guides.append(cv2.pyrDown(guides[-1]))
    coarse = None
    estimate = None
    solver = nnf = None
    for level in range(len(images) - 1, -1, -1):
        img, hl = images[level], holes[level]
        if estimate is None:
            estimate = _initial_fill(img, hl) if guides is None else guides[level].copy()
        else:  # start from the coarser level's result, enlarged
            coarser = cv2.resize(
                estimate, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR
            )
            estimate = img.copy()
            estimate[hl] = coarser[hl]
        guide = None
        if guides is not None and guide_weight > 0:
            guide = cv2.GaussianBlur(guides[level], (0, 0), 2.0)
        solver = _Level(img, hl, rng, guide, guide_weight)
        nnf = solver.init_nnf(coarse)
        iters = iterations if level > 0 else max(2, iterations // 2)
        if level == 0 and finest_iterations is not None:
            iters = finest_iterations
        for _ in range(iters):
            nnf = solver.search(estimate, nnf)
            estimate = solver.vote(estimate, nnf)
        coarse = (solver.index, nnf)
    return estimate, solver, nnf


def _pyramid(image: np.ndarray, hole: np.ndarray, min_size: int):
    images, holes = [image], [hole]
    while min(images[-1].shape[:2]) // 2 >= min_size:
        img = cv2.pyrDown(images[-1])
        h, w = img.shape[:2]
        # a coarse pixel is a hole pixel if any fine pixel under it is
        hl = cv2.resize(holes[-1].astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA) > 0
        if hl.all() or (~hl).sum() < 4 * PATCH * PATCH:
            break
        images.append(img)
        holes.append(hl)
    return images, holes


def _initial_fill(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    u8 = pixels.quantize(img, np.uint8)
    filled = cv2.inpaint(u8, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    out = img.copy()
    out[hole] = pixels.to_unit(filled[hole])
    return out


class _Level:
    """The search and vote at one pyramid level. Coordinates are patch centres (y, x)."""

    def __init__(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        rng: np.random.Generator,
        guide: np.ndarray | None = None,
        guide_weight: float = 0.0,
    ) -> None:
        self.h, self.w = hole.shape
        self.guide_rows = None
        if guide is not None:
            # low-pass structure at the patch centre and corners, weighted to count as much as
            # ``guide_weight`` times the whole patch's colour term
            padded = np.pad(guide, ((R, R), (R, R), (0, 0)), mode="edge")
            taps = [(R, R), (0, 0), (0, 2 * R), (2 * R, 0), (2 * R, 2 * R)]
            feats = [padded[y : y + self.h, x : x + self.w] for y, x in taps]
            scale = np.float32(np.sqrt(guide_weight * PATCH * PATCH / len(taps)))
            self.guide_rows = (np.concatenate(feats, 2) * scale).reshape(self.h * self.w, -1)
        self.rng = rng
        padded = np.pad(hole, R, constant_values=True)
        # a source patch must lie entirely in the known region (and inside the image)
        near_hole = cv2.dilate(padded.astype(np.uint8), np.ones((PATCH, PATCH), np.uint8)) > 0
        self.valid_source = ~near_hole[R:-R, R:-R]
        if not self.valid_source.any():
            # tiny images: allow patches that overlap the hole but are inside the image
            self.valid_source = ~hole
        self.sources = np.argwhere(self.valid_source)
        # target patches: every centre whose patch touches the hole
        touch = cv2.dilate(hole.astype(np.uint8), np.ones((PATCH, PATCH), np.uint8)) > 0
        self.targets = np.argwhere(touch)
        self.hole = hole
        self.index = -np.ones((self.h, self.w), np.int64)
        self.index[self.targets[:, 0], self.targets[:, 1]] = np.arange(len(self.targets))

    def init_nnf(self, coarse: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """Random valid sources, or the coarser level's matches scaled up where still valid."""
        n = len(self.targets)
        nnf = self.sources[self.rng.integers(0, len(self.sources), n)]
        if coarse is not None:
            c_index, c_nnf = coarse
            ch, cw = c_index.shape
            cy = np.minimum(self.targets[:, 0] // 2, ch - 1)
            cx = np.minimum(self.targets[:, 1] // 2, cw - 1)
            idx = c_index[cy, cx]
            has = idx >= 0
            up = np.zeros_like(nnf)
            up[has] = c_nnf[idx[has]] * 2 + (self.targets[has] % 2)
            ok = has & (up[:, 0] >= 0) & (up[:, 0] < self.h) & (up[:, 1] >= 0) & (up[:, 1] < self.w)
            ok[ok] &= self.valid_source[up[ok, 0], up[ok, 1]]
            nnf[ok] = up[ok]
        return nnf

    def describe(self, est: np.ndarray) -> None:
        """Cache every pixel's patch as one row (edge-replicated at the border)."""
        padded = np.pad(est, ((R, R), (R, R), (0, 0)), mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, (PATCH, PATCH), axis=(0, 1))
        self.desc = windows.reshape(self.h * self.w, -1)  # copies into contiguous rows
        if self.guide_rows is not None:
            self.desc = np.concatenate([self.desc, self.guide_rows], 1)
        self._target_rows = self.desc[self.targets[:, 0] * self.w + self.targets[:, 1]]

    def _distance(self, nnf: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Sum of squared differences between target patches (``rows``) and their sources."""
        rows = self._target_rows if rows is None else rows
        diff = rows - self.desc[nnf[:, 0] * self.w + nnf[:, 1]]
        return np.einsum("ij,ij->i", diff, diff)

    def search(self, est: np.ndarray, nnf: np.ndarray) -> np.ndarray:
        """One sweep of propagation from the four neighbours plus a random search."""
        self.describe(est)
        best = self._distance(nnf)
        ty, tx = self.targets[:, 0], self.targets[:, 1]
        for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            ny, nx = ty + dy, tx + dx
            ok = (ny >= 0) & (ny < self.h) & (nx >= 0) & (nx < self.w)
            neighbour = np.full(len(ty), -1)
            neighbour[ok] = self.index[ny[ok], nx[ok]]
            has = neighbour >= 0
            cand = nnf.copy()
            cand[has] = nnf[neighbour[has]] - (dy, dx)
            best, nnf = self._improve(nnf, best, cand, has)
        radius = max(self.h, self.w)
        while radius >= 1:
            jitter = self.rng.integers(-radius, radius + 1, size=nnf.shape)
            cand = nnf + jitter
            best, nnf = self._improve(nnf, best, cand, np.ones(len(nnf), bool))
            radius //= 2
        return nnf

    def _improve(self, nnf, best, cand, consider):
        cy, cx = cand[:, 0], cand[:, 1]
        ok = consider & (cy >= 0) & (cy < self.h) & (cx >= 0) & (cx < self.w)
        ok[ok] &= self.valid_source[cy[ok], cx[ok]]
        if not ok.any():
            return best, nnf
        d = np.full(len(nnf), np.inf, np.float32)
        sub = np.flatnonzero(ok)
        d[sub] = self._distance(cand[sub], self._target_rows[sub])
        better = d < best
        nnf = nnf.copy()
        nnf[better] = cand[better]
        return np.where(better, d, best), nnf

    def vote(self, est: np.ndarray, nnf: np.ndarray) -> np.ndarray:
        """Each hole pixel becomes the similarity-weighted mean of its overlapping patches."""
        dist = self._distance(nnf) / (PATCH * PATCH)  # descriptors are still those of ``est``
        sigma = max(float(np.percentile(dist, 75)), 1e-6)
        weight = np.exp(-dist / (2 * sigma)).astype(np.float32)
        ty, tx = self.targets[:, 0], self.targets[:, 1]
        sy, sx = nnf[:, 0], nnf[:, 1]
        flats, values, weights = [], [], []
        for dy, dx in _OFFSETS:
            y1, x1 = ty + dy, tx + dx
            ok = (y1 >= 0) & (y1 < self.h) & (x1 >= 0) & (x1 < self.w)
            ok[ok] &= self.hole[y1[ok], x1[ok]]
            flats.append(y1[ok] * self.w + x1[ok])
            values.append(
                est[np.clip(sy[ok] + dy, 0, self.h - 1), np.clip(sx[ok] + dx, 0, self.w - 1)]
            )
            weights.append(weight[ok])
        flat = np.concatenate(flats)
        w = np.concatenate(weights)
        v = np.concatenate(values)
        size = self.h * self.w
        wsum = np.bincount(flat, weights=w, minlength=size)
        out = est.copy()
        flat_out = out.reshape(-1, 3)
        filled = wsum > 0
        for c in range(3):
            acc = np.bincount(flat, weights=v[:, c] * w, minlength=size)
            flat_out[filled, c] = (acc[filled] / wsum[filled]).astype(np.float32)
        return out
