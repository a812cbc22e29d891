"""Layers shared by the generator and discriminators."""

from jaxinpaint.layers.pconv import PartialConv2d, partial_conv

__all__ = ["PartialConv2d", "partial_conv"]
