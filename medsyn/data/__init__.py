"""Data sources, splits and I/O. Every source returns an :class:`ImageSet`."""

from medsyn.data.image_set import ImageSet

__all__ = ["ImageSet"]
