"""Pixels, layers, mask, selection and undo history. Pure numpy: no Qt, no torch."""

from studio.document.brush import BrushSettings, Stroke
from studio.document.commands import MASK
from studio.document.document import Change, Document
from studio.document.history import History, Step
from studio.document.layer import Layer, composite, to_rgba

__all__ = [
    "MASK",
    "BrushSettings",
    "Change",
    "Document",
    "History",
    "Layer",
    "Step",
    "Stroke",
    "composite",
    "to_rgba",
]
