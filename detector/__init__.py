"""Occluder detector: torchvision Mask R-CNN R50-FPN (PyTorch only; never imports jax).

Modules: model (build), data (COCO JSON via pycocotools), train (loop, DDP, checkpoints),
evaluate (COCOeval + report), visualize (PNGs), predict (Detector: image -> instances -> mask),
mask_cache (TFRecords keyed by example id), sources (TFDS / image folders), checkpoint,
synthetic (a tiny COCO set for tests). See docs/detector.md.
"""
