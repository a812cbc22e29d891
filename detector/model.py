"""Build the occluder detector: torchvision Mask R-CNN R50-FPN with 19 classes + background.

The architecture is the seed's detectron2 `mask_rcnn_R_50_FPN_3x`. The input transform is
pinned to one size (`min_size = max_size = image_size`) because torchvision's default upsamples
a 200 px face to 800 px, four times the work for no gain on images that small.
"""

import functools

import torchvision
from torch import nn
from torchvision.models.detection import mask_rcnn
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.ops import misc as misc_nn_ops

from data_pipeline.categories import NUM_CLASSES

WEIGHTS = ("none", "coco")
NORMS = ("auto", "batch", "group", "frozen")


def _norm_layer(norm: str, weights: str):
    """The backbone's normalisation layer.

    From scratch, BatchNorm over 2 images per batch gives noisy statistics that differ between
    train and eval mode; GroupNorm (He et al. 2019, "Rethinking ImageNet Pre-training") does not
    depend on the batch. With COCO weights the pretrained statistics are frozen, as detectron2 does.
    """
    if norm == "auto":
        norm = "frozen" if weights == "coco" else "group"
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "group":
        return functools.partial(nn.GroupNorm, 32)
    return misc_nn_ops.FrozenBatchNorm2d


def build_model(model_config, image_size: int, *, load_weights: bool = True):
    """A Mask R-CNN R50-FPN for the occluder classes, input pinned to `image_size` px.

    `model_config` is `config.model` of configs/detector.py. `weights="coco"` downloads
    torchvision's COCO checkpoint (network needed) and replaces its class heads; "none" trains
    from scratch. `load_weights=False` builds the same architecture without downloading, for
    loading one of our checkpoints into it.
    """
    weights, norm = model_config.weights, model_config.norm
    if weights not in WEIGHTS:
        raise ValueError(f"config.model.weights is {weights!r}; expected one of {WEIGHTS}")
    if norm not in NORMS:
        raise ValueError(f"config.model.norm is {norm!r}; expected one of {NORMS}")
    if weights == "coco" and norm not in ("auto", "frozen"):
        raise ValueError(
            f"config.model.norm is {norm!r} with weights=coco; expected auto or frozen"
        )
    if image_size <= 0:
        raise ValueError(f"image size is {image_size}; expected a positive number of pixels")
    kwargs = dict(
        min_size=image_size,
        max_size=image_size,
        rpn_pre_nms_top_n_test=model_config.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=model_config.rpn_post_nms_top_n_test,
        box_detections_per_img=model_config.box_detections_per_img,
        box_batch_size_per_image=model_config.roi_batch_size_per_image,
        box_score_thresh=model_config.eval_score_thresh,
    )
    # From scratch every stage must learn; fine-tuning keeps the early stages fixed (detectron2).
    trainable = model_config.trainable_backbone_layers if weights == "coco" else 5
    if weights == "coco" and load_weights:
        # Only here does anything touch the network; tests and the demo never ask for it.
        model = mask_rcnn.maskrcnn_resnet50_fpn(
            weights=mask_rcnn.MaskRCNN_ResNet50_FPN_Weights.COCO_V1,
            trainable_backbone_layers=trainable,
            **kwargs,
        )
        box_in = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(box_in, NUM_CLASSES)
        mask_in = model.roi_heads.mask_predictor.conv5_mask.in_channels
        model.roi_heads.mask_predictor = MaskRCNNPredictor(mask_in, 256, NUM_CLASSES)
        return model
    resnet = torchvision.models.resnet50(weights=None, norm_layer=_norm_layer(norm, weights))
    backbone = _resnet_fpn_extractor(resnet, trainable_layers=trainable)
    model = mask_rcnn.MaskRCNN(backbone, num_classes=NUM_CLASSES, **kwargs)
    if weights == "coco":
        for module in model.modules():  # torchvision's COCO weights expect eps 0 in frozen BN
            if isinstance(module, misc_nn_ops.FrozenBatchNorm2d):
                module.eps = 0.0
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def set_score_thresh(model: mask_rcnn.MaskRCNN, score_thresh: float) -> None:
    """Change the minimum score of returned detections (eval keeps low ones; prediction 0.7)."""
    model.roi_heads.score_thresh = float(score_thresh)
