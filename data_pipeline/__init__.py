"""Occluded-faces data: face crops, occluder compositing, masks, COCO and TFDS outputs."""
