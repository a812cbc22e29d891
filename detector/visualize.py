"""PNG pictures of detector output: masks tinted, boxes outlined, labels with scores."""

import numpy as np
from PIL import Image, ImageDraw

from data_pipeline import atomic
from data_pipeline.categories import ID_TO_CATEGORY, colour


def draw_instances(image_HxWx3, boxes_Nx4, scores_N, labels_N, masks_NxHxW) -> np.ndarray:
    """The image with each instance's mask tinted, its box outlined and `name score` written."""
    out = np.asarray(image_HxWx3, np.float32).copy()
    masks = np.asarray(masks_NxHxW, bool)
    for i in range(len(boxes_Nx4)):
        tint = np.array(colour(int(labels_N[i])), np.float32)
        out[masks[i]] = 0.5 * out[masks[i]] + 0.5 * tint
    canvas = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for i in range(len(boxes_Nx4)):
        label = int(labels_N[i])
        x0, y0, x1, y1 = (float(v) for v in boxes_Nx4[i])
        draw.rectangle([x0, y0, x1, y1], outline=colour(label), width=1)
        name = ID_TO_CATEGORY.get(label, str(label))
        draw.text((x0 + 2, y0 + 1), f"{name} {float(scores_N[i]):.2f}", fill=(255, 255, 255))
    return np.asarray(canvas)


def save_png(path, image_HxWx3: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (temp name, then rename)."""
    with atomic.open_atomic(path, "wb") as f:
        Image.fromarray(np.asarray(image_HxWx3, np.uint8)).save(f, format="PNG")
