"""Dockable panels: layers, history, tool options and mask. Each mirrors the document or the
tool box and never holds document state itself."""
