"""The detector as an ONNX graph that runs without PyTorch (onnxruntime, any language).

torchvision's Mask R-CNN exports whole, through PyTorch's TorchScript-based exporter (the one
torchvision's own ONNX tests use): resize to the model's size, backbone, RPN, box and mask heads,
and the masks pasted back into the input image. One image per call, any height and width:

    image 3xHxW float32 in [0, 1] (RGB) -> boxes Nx4 (x0, y0, x1, y1), labels N int64,
                                           scores N, masks Nx1xHxW float32 (probabilities)

best first, down to the score floor the graph was exported with (`score_floor`): a serving
threshold can be raised above it, never lowered below.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from detector import model as model_lib
from detector.predict import Detector

INPUT_NAME = "image"
OUTPUT_NAMES = ("boxes", "labels", "scores", "masks")


@contextlib.contextmanager
def _score_thresh(model, value: float):
    previous = model.roi_heads.score_thresh
    model_lib.set_score_thresh(model, value)
    try:
        yield
    finally:
        model_lib.set_score_thresh(model, previous)


def to_onnx(detector: Detector, score_floor: float = 0.05, opset: int = 17) -> bytes:
    """`detector`'s model as a serialized ONNX graph that keeps detections scoring at least
    `score_floor`."""
    if not 0.0 <= score_floor <= 1.0:
        raise ValueError(f"score_floor must be in [0, 1], got {score_floor}")
    model = detector.model.eval()
    size = model.transform.min_size[-1]
    dynamic = {INPUT_NAME: {1: "height", 2: "width"}}
    dynamic.update({name: {0: "detections"} for name in OUTPUT_NAMES})
    dynamic["masks"].update({2: "height", 3: "width"})
    buffer = io.BytesIO()
    with (
        _score_thresh(model, score_floor),
        torch.no_grad(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # the tracer's warnings on torchvision's shape code
        torch.onnx.export(
            model,
            ([torch.rand(3, size, size, device=detector.device)],),
            buffer,
            dynamo=False,  # the dynamo exporter cannot follow the data-dependent detections
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic,
        )
    return buffer.getvalue()


@torch.inference_mode()
def raw_outputs(detector: Detector, image_3xHxW: np.ndarray, score_floor: float) -> list:
    """The PyTorch model's `OUTPUT_NAMES` arrays for one image, at `score_floor`: what the
    exported graph must reproduce."""
    model = detector.model.eval()
    with _score_thresh(model, score_floor):
        out = model([torch.from_numpy(np.ascontiguousarray(image_3xHxW)).to(detector.device)])[0]
    return [out[name].cpu().numpy() for name in OUTPUT_NAMES]


def differences(reference: Sequence[np.ndarray], exported: Sequence[np.ndarray]) -> dict:
    """How far the exported graph's `OUTPUT_NAMES` arrays are from PyTorch's for one image:
    detections in each, whether the labels agree, the largest box and score differences, and
    the fraction of mask pixels on different sides of 0.5. Raises ValueError when the two do
    not find the same detections in the same order."""
    (ref_boxes, ref_labels, ref_scores, ref_masks), (boxes, labels, scores, masks) = (
        reference,
        exported,
    )
    if len(ref_labels) != len(labels) or not np.array_equal(ref_labels, labels):
        raise ValueError(
            f"the exported detector finds {labels.tolist()}, PyTorch {ref_labels.tolist()}"
        )
    if not len(labels):
        return {"detections": 0}
    return {
        "detections": len(labels),
        "box_px": float(np.abs(boxes - ref_boxes).max()),
        "score": float(np.abs(scores - ref_scores).max()),
        "mask_pixels": float(np.mean((masks >= 0.5) != (ref_masks >= 0.5))),
    }
