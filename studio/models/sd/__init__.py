"""Stable Diffusion from the artist's own files: loading offline, never downloading."""
