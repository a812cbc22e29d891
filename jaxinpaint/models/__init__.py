"""Generator and discriminators of the inpainting GAN."""

from jaxinpaint.models.discriminators import (
    Discriminator,
    crop,
    discriminators_from_config,
    hole_crop_origin,
)
from jaxinpaint.models.generator import Generator, generator_from_config

__all__ = [
    "Discriminator",
    "Generator",
    "crop",
    "discriminators_from_config",
    "generator_from_config",
    "hole_crop_origin",
]
