"""Pixels, layers, mask, selection and undo history. Pure numpy: no Qt, no torch."""

from studio.document.brush import BrushSettings, Stroke
from studio.document.commands import MASK
from studio.document.document import MAX_PIXELS, Change, Document, changed_bbox, check_size
from studio.document.history import History, Step
from studio.document.layer import Layer, composite, over, to_rgba

__all__ = [
    "MASK",
    "MAX_PIXELS",
    "BrushSettings",
    "Change",
    "Document",
    "History",
    "Layer",
    "Step",
    "Stroke",
    "changed_bbox",
    "check_size",
    "composite",
    "over",
    "to_rgba",
]
