"""Studio: a desktop image editor in which neural networks do the heavy lifting."""

__version__ = "0.1.0"
