"""Prediction API: images -> instances (class, score, box, mask) -> union mask of chosen classes.

    det = Detector.from_checkpoint("runs/detector/model_final.pt")
    instances = det.predict([image_HxWx3_uint8])[0]        # list of Instance, best first
    mask_HxW = det.union_mask(instances)                     # uint8 0/1, score >= 0.7
    mask_HxW = det(image_HxWx3_uint8)                        # the same in one call
    mask_HxW, instances = det.detect(image_HxWx3_uint8)      # both

`detect` is the mask source launch/reconstruct.py hands to `jaxinpaint.reconstruct`.
"""

from collections.abc import Sequence

import numpy as np
import torch

from data_pipeline import align
from data_pipeline.categories import CATEGORIES, Instance, category_id, union_mask
from detector import checkpoint
from detector import model as model_lib


def box_mask(instances: Sequence[Instance], height: int, width: int) -> np.ndarray:
    """HxW uint8 0/1: the union of the instances' boxes (whole pixels they touch)."""
    out = np.zeros((height, width), np.uint8)
    for inst in instances:
        x0, y0, x1, y1 = inst.box
        x0, y0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        x1, y1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
        out[y0:y1, x0:x1] = 1
    return out


def default_device() -> str:
    """ "cuda" when PyTorch sees a GPU, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


class Detector:
    """A trained Mask R-CNN with its score threshold and the classes whose masks count.

    `score` is what the threshold applies to (`model.set_scoring`): "occluder", the probability
    that a region is any occluder (its label the likeliest class), or "class", the probability of
    its own class. `classes` keeps the instances labelled with one of them.
    """

    def __init__(
        self, model, *, score_thresh=0.7, classes=(), score="occluder", device="cpu", batch_size=4
    ):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.score_thresh = float(score_thresh)
        self.batch_size = int(batch_size)
        names = tuple(classes) or CATEGORIES
        self.class_ids = frozenset(category_id(n) for n in names)  # raises on unknown names
        model_lib.set_scoring(self.model, score)  # raises on an unknown score, changing nothing
        # The model drops low scores before its per-image cap, so the cap counts kept instances.
        model_lib.set_score_thresh(self.model, self.score_thresh)

    @property
    def score(self) -> str:
        """What `score_thresh` applies to: "occluder" or "class"."""
        return model_lib.scoring(self.model)

    @property
    def input_size(self) -> int:
        """The side the model sees (every image is resized to it): the size it trained at."""
        return int(self.model.transform.min_size[-1])

    @classmethod
    def from_checkpoint(
        cls, path, *, score_thresh=None, classes=None, score=None, device="cpu", **kwargs
    ):
        """Rebuild the model stored in a training checkpoint; threshold, classes and scoring
        default to its config (checkpoints from before `predict.score`: occluder)."""
        state = checkpoint.load(path, map_location=device)
        config = checkpoint.config_of(state)
        model = model_lib.build_model(config.model, int(state["image_size"]), load_weights=False)
        model.load_state_dict(state["model"])
        if score_thresh is None:
            score_thresh = config.predict.score_thresh
        if classes is None:
            classes = tuple(config.predict.classes)
        if score is None:
            score = config.predict.get("score", "occluder")
        return cls(
            model, score_thresh=score_thresh, classes=classes, score=score, device=device, **kwargs
        )

    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray]) -> list[list[Instance]]:
        """Instances scoring at least the threshold in each HxWx3 uint8 RGB image, best first."""
        results = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            tensors = [self._to_tensor(im) for im in chunk]
            # A strip too thin for the model's resize (2x600 px) holds nothing to find; torch
            # would raise on a side of 0 px and cost the whole batch.
            seen = [not self._too_thin(t) for t in tensors]
            outs = iter(self.model([t for t, s in zip(tensors, seen, strict=True) if s]))
            for visible in seen:
                if not visible:
                    results.append([])
                    continue
                out = next(outs)
                keep = out["scores"] >= self.score_thresh
                boxes = out["boxes"][keep].cpu().numpy()
                scores = out["scores"][keep].cpu().numpy()
                labels = out["labels"][keep].cpu().numpy()
                masks = (out["masks"][keep][:, 0] >= 0.5).cpu().numpy()
                results.append(
                    [
                        Instance(
                            int(labels[i]), float(scores[i]), tuple(map(float, boxes[i])), masks[i]
                        )
                        for i in range(len(scores))
                    ]
                )
        return results

    def union_mask(self, instances: Sequence[Instance], height=None, width=None) -> np.ndarray:
        """HxW uint8 0/1: the union of the chosen classes' masks (zeros when none)."""
        chosen = [i for i in instances if i.label in self.class_ids]
        if height is None:
            if not chosen:
                raise ValueError("no instances to take the mask size from; pass height and width")
            height, width = chosen[0].mask.shape
        return union_mask(chosen, height, width)

    def masks(
        self, images: Sequence[np.ndarray], on_face: float = 0.0
    ) -> list[tuple[np.ndarray, np.ndarray, list]]:
        """(union mask, box mask, chosen instances) per image; both masks HxW uint8 0/1. With
        `on_face` > 0 the images are face crops aligned to the template, and an instance counts
        only when at least that fraction of its mask lies on the face (`align.on_face`)."""
        out = []
        for image, instances in zip(images, self.predict(images), strict=True):
            h, w = image.shape[:2]
            chosen = [i for i in instances if i.label in self.class_ids]
            if on_face > 0 and chosen:
                keep = align.on_face([i.mask for i in chosen], on_face)
                chosen = [i for i, k in zip(chosen, keep, strict=True) if k]
            out.append((self.union_mask(chosen, h, w), box_mask(chosen, h, w), chosen))
        return out

    def __call__(self, image_HxWx3: np.ndarray) -> np.ndarray:
        """The union mask of one image (HxW uint8 0/1)."""
        return self.masks([image_HxWx3])[0][0]

    def detect(self, image_HxWx3: np.ndarray) -> tuple[np.ndarray, list[Instance]]:
        """The union mask of one image and the chosen instances that make it: the mask source
        of reconstruction (`jaxinpaint.reconstruct`), which reports what it removed."""
        mask, _, chosen = self.masks([image_HxWx3])[0]
        return mask, chosen

    def _too_thin(self, image_3xHxW: torch.Tensor) -> bool:
        """True when the model's resize (shorter side to min_size, longer side at most max_size,
        as torchvision's GeneralizedRCNNTransform does it) leaves a side under one pixel."""
        transform = self.model.transform
        h, w = image_3xHxW.shape[-2:]
        scale = min(transform.min_size[-1] / min(h, w), transform.max_size / max(h, w))
        return int(min(h, w) * scale) < 1

    def _to_tensor(self, image: np.ndarray) -> torch.Tensor:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image has shape {image.shape} and dtype {image.dtype}; expected HxWx3 uint8 RGB"
            )
        return torch.from_numpy(image.copy()).permute(2, 0, 1).float().div_(255.0).to(self.device)
