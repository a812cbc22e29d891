"""Occluder detector: torchvision Mask R-CNN R50-FPN (PyTorch only; never imports jax)."""
