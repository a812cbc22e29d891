"""Detector model: builds, runs on images with zero and several instances, and learns."""

import numpy as np
import pytest
import torch
import torchvision
from config_files import load_config

from data_pipeline.categories import NUM_CLASSES, category_id
from detector import model as model_lib
from detector import synthetic


def tiny_model_config():
    config = load_config("detector").model
    config.rpn_pre_nms_top_n_test = 100
    config.rpn_post_nms_top_n_test = 50
    config.box_detections_per_img = 10
    config.eval_score_thresh = 0.0  # an untrained model scores low; keep its boxes
    return config


def targets_of(instances, size):
    boxes, labels, masks = [], [], []
    for name, mask in instances:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(category_id(name))
        masks.append(mask)
    return {
        "boxes": torch.tensor(np.array(boxes, np.float32).reshape(-1, 4)),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": torch.tensor(np.array(masks, np.uint8).reshape(-1, size, size)),
    }


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return model_lib.build_model(tiny_model_config(), image_size=64)


def test_heads_have_19_classes_plus_background(model):
    assert NUM_CLASSES == 20
    assert model.roi_heads.box_predictor.cls_score.out_features == NUM_CLASSES
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == NUM_CLASSES
    # The input transform keeps the dataset's size instead of upsampling to 800 px.
    assert model.transform.min_size == (64,) and model.transform.max_size == 64


def test_rejects_bad_config_values():
    config = tiny_model_config()
    config.weights = "imagenet"  # only vgg16 has ImageNet weights offline
    with pytest.raises(ValueError, match="weights=imagenet; the ImageNet weights"):
        model_lib.build_model(config, 64)
    config.weights = "places365"
    with pytest.raises(ValueError, match="weights"):
        model_lib.build_model(config, 64)
    config = tiny_model_config()
    config.weights, config.backbone, config.trainable_backbone_layers = "imagenet", "vgg16", 6
    with pytest.raises(ValueError, match="trainable_backbone_layers is 6; expected 0 to 5"):
        model_lib.build_model(config, 64)
    with pytest.raises(ValueError, match="image size"):
        model_lib.build_model(tiny_model_config(), 0)
    config = tiny_model_config()
    config.roi_positive_fraction = 1.5
    with pytest.raises(ValueError, match=r"roi_positive_fraction is 1\.5; expected a fraction"):
        model_lib.build_model(config, 64)


def test_forward_eval_shapes(model):
    model.eval()
    images = [torch.rand(3, 64, 64), torch.rand(3, 48, 64)]
    with torch.inference_mode():
        outs = model(images)
    for out, image in zip(outs, images, strict=True):
        n = len(out["scores"])
        assert out["boxes"].shape == (n, 4)
        assert out["masks"].shape == (n, 1, *image.shape[1:])  # masks at the input's size
        assert out["labels"].dtype == torch.int64
        assert ((out["labels"] >= 1) & (out["labels"] < NUM_CLASSES)).all()


def test_occluder_scoring_gives_a_region_one_detection_scored_by_p_not_background(model):
    model.eval()
    logits = []
    hook = model.roi_heads.box_predictor.register_forward_hook(lambda m, i, o: logits.append(o[0]))
    image = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))]
    try:
        with torch.inference_mode():
            by_class = model(image)[0]
            model_lib.set_scoring(model, "occluder")
            assert model_lib.scoring(model) == "occluder"
            by_occluder = model(image)[0]
    finally:
        hook.remove()
        model_lib.set_scoring(model, "class")
    assert model_lib.scoring(model) == "class"  # torchvision's own scoring is back
    probs = [torch.softmax(x, -1) for x in logits]
    # by class: the best detection is the best (proposal, class) probability
    assert float(by_class["scores"][0]) == pytest.approx(float(probs[0][:, 1:].max()), abs=1e-6)
    # by occluder: the best region's 1 - p(background), labelled with its likeliest class
    not_background = 1 - probs[1][:, 0]
    best = int(not_background.argmax())
    assert float(by_occluder["scores"][0]) == pytest.approx(float(not_background[best]), abs=1e-6)
    assert int(by_occluder["labels"][0]) == int(probs[1][best, 1:].argmax()) + 1
    assert by_occluder["scores"][0] > by_class["scores"][0]
    # one detection per region: NMS across classes leaves no two boxes overlapping much
    overlap = torchvision.ops.box_iou(by_occluder["boxes"], by_occluder["boxes"])
    assert (overlap.fill_diagonal_(0) <= model.roi_heads.nms_thresh).all()
    assert by_occluder["masks"].shape[0] == len(by_occluder["scores"])
    with pytest.raises(ValueError, match="detector score is 'max'; expected one of"):
        model_lib.set_scoring(model, "max")


def test_train_losses_with_zero_and_several_instances(model):
    rng = np.random.default_rng(1)
    image, _ = synthetic.make_image(rng, 64, synthetic.DEFAULT_CLASSES, 0)
    _, instances = synthetic.make_image(rng, 64, synthetic.DEFAULT_CLASSES, 0)
    while len(instances) < 2:
        image2, instances = synthetic.make_image(rng, 64, synthetic.DEFAULT_CLASSES, 3)
    images = [torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im in (image, image2)]
    model.train()
    losses = model(images, [targets_of([], 64), targets_of(instances, 64)])
    assert set(losses) == {
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
        "loss_objectness",
        "loss_rpn_box_reg",
    }
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_mask"] > 0  # the image with instances trains the mask head


def test_one_step_lowers_loss_on_fixed_batch():
    torch.manual_seed(0)
    model = model_lib.build_model(tiny_model_config(), image_size=64)
    rng = np.random.default_rng(2)
    batch = [synthetic.make_image(rng, 64, synthetic.DEFAULT_CLASSES, 2) for _ in range(2)]
    images = [torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im, _ in batch]
    targets = [targets_of(inst, 64) for _, inst in batch]
    opt = torch.optim.SGD(model.parameters(), lr=0.002, momentum=0.9)
    model.train()

    def loss():
        torch.manual_seed(123)  # the same RPN/ROI samples before and after the step
        return sum(model(images, targets).values())

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < before.item() - 1e-3


def test_coco_architecture_builds_offline_with_torchvision_layout():
    # What a checkpoint of a weights=coco run is loaded into: no download, same tensors as
    # torchvision's COCO model (frozen BN keeps no num_batches_tracked).
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    config = tiny_model_config()
    config.weights = "coco"
    ours = model_lib.build_model(config, 64, load_weights=False).state_dict()
    ref = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    ref_shapes = {
        k: v.shape for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    assert {k: v.shape for k, v in ours.items()} == ref_shapes


def test_learning_rate_warms_up_then_drops():
    from detector.train import learning_rate

    cfg = load_config("detector").train
    cfg.warmup_steps, cfg.lr_decay_steps = 100, (300,)
    assert learning_rate(cfg, 0) == pytest.approx(0.001 * 0.001)  # seed LR x warm-up factor
    assert learning_rate(cfg, 50) == pytest.approx(0.001 * (0.001 * 0.5 + 0.5))
    assert learning_rate(cfg, 100) == pytest.approx(0.001)
    assert learning_rate(cfg, 300) == pytest.approx(0.0001)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "mobilenet_v3_large"])
def test_cpu_backbones_build_train_and_predict(backbone):
    config = tiny_model_config()
    config.backbone = backbone
    config.anchor_sizes = (16, 32, 64, 128, 256)
    config.mask_head_layers = (64, 64)
    torch.manual_seed(0)
    model = model_lib.build_model(config, image_size=64)
    assert all(p.requires_grad for p in model.backbone.parameters())  # from scratch: all train
    norms = [m for m in model.backbone.body.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and not any(
        isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.body.modules()
    )
    assert model.roi_heads.mask_head[-1][0].out_channels == 64
    rng = np.random.default_rng(3)
    image, instances = synthetic.make_image(rng, 64, synthetic.DEFAULT_CLASSES, 2)
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    model.train()
    losses = model([x], [targets_of(instances, 64)])
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_mask"] > 0
    model.eval()
    with torch.inference_mode():
        out = model([x])[0]
    assert out["masks"].shape[1:] == (1, 64, 64)


def test_backbone_and_anchor_options_are_checked():
    config = tiny_model_config()
    config.backbone = "vgg19"
    with pytest.raises(ValueError, match=r"config\.model\.backbone is 'vgg19'"):
        model_lib.build_model(config, 64)
    config = tiny_model_config()
    config.anchor_sizes = (16, 32)
    with pytest.raises(ValueError, match="anchor_sizes has 2 sizes; expected 5"):
        model_lib.build_model(config, 64)
    config.backbone = "vgg16"
    with pytest.raises(ValueError, match="anchor_sizes has 2 sizes; expected 4, one per"):
        model_lib.build_model(config, 64)
    config = tiny_model_config()
    config.fpn_channels = 128
    with pytest.raises(ValueError, match="fpn_channels is 128 with backbone 'resnet50'"):
        model_lib.build_model(config, 64)
    config.backbone, config.fpn_channels = "vgg16", 0
    with pytest.raises(ValueError, match="fpn_channels is 0; expected a positive width"):
        model_lib.build_model(config, 64)
    config = tiny_model_config()
    config.weights, config.backbone = "coco", "resnet18"
    with pytest.raises(ValueError, match="weights=coco"):
        model_lib.build_model(config, 64, load_weights=False)


def test_checkpoints_from_before_the_backbone_options_build_the_seed_model():
    import ml_collections

    config = tiny_model_config()
    new_fields = (
        "backbone",
        "anchor_sizes",
        "mask_head_layers",
        "fpn_channels",
        "rpn_pre_nms_top_n_train",
        "rpn_post_nms_top_n_train",
    )
    old = ml_collections.ConfigDict({k: v for k, v in config.items() if k not in new_fields})
    old_model = model_lib.build_model(old, 64)
    old_state = old_model.state_dict()
    new_state = model_lib.build_model(config, 64).state_dict()
    assert {k: v.shape for k, v in old_state.items()} == {k: v.shape for k, v in new_state.items()}
    assert old_model.rpn._pre_nms_top_n["training"] == 2000  # torchvision's, as before
    assert old_model.rpn._post_nms_top_n["training"] == 2000


def test_training_proposal_counts_come_from_the_config():
    config = tiny_model_config()
    config.rpn_pre_nms_top_n_train, config.rpn_post_nms_top_n_train = 300, 40
    config.roi_batch_size_per_image = 16
    net = model_lib.build_model(config, 64)
    assert net.rpn._pre_nms_top_n == {"training": 300, "testing": config.rpn_pre_nms_top_n_test}
    assert net.rpn._post_nms_top_n["training"] == 40
    assert net.roi_heads.fg_bg_sampler.batch_size_per_image == 16


def vgg16_config(weights="imagenet"):
    config = tiny_model_config()
    config.backbone, config.weights = "vgg16", weights
    config.anchor_sizes = (16, 32, 64, 128)
    config.mask_head_layers = (64, 64)
    config.fpn_channels = 96
    return config


def test_vgg16_backbone_starts_from_the_installed_imagenet_convs_and_learns():
    from data_pipeline import vgg16_weights

    torch.manual_seed(0)
    model = model_lib.build_model(vgg16_config(), image_size=64)
    convs = [m for m in model.backbone.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13
    for conv, (kernel, bias) in zip(convs, vgg16_weights.vgg16_convs(), strict=True):
        np.testing.assert_array_equal(conv.weight.detach().numpy(), kernel.transpose(3, 2, 0, 1))
        np.testing.assert_array_equal(conv.bias.detach().numpy(), bias)
    # trainable_backbone_layers=3: the first two stages (4 convs) stay fixed, the rest train.
    assert [c.weight.requires_grad for c in convs] == [False] * 4 + [True] * 9
    assert all(p.requires_grad for p in model.backbone.fpn.parameters())
    assert model.backbone.out_channels == 96 == model.rpn.head.conv[0][0].in_channels
    rng = np.random.default_rng(3)
    image, instances = synthetic.make_image(rng, 64, synthetic.DEFAULT_CLASSES, 2)
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    model.train()
    losses = model([x], [targets_of(instances, 64)])
    sum(losses.values()).backward()
    assert convs[0].weight.grad is None and convs[4].weight.grad is not None
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.inference_mode():
        out = model([x])[0]
    assert out["masks"].shape[1:] == (1, 64, 64)


def test_vgg16_checkpoint_architecture_builds_without_reading_weights(monkeypatch):
    from data_pipeline import vgg16_weights

    pretrained = model_lib.build_model(vgg16_config(), image_size=64)

    def no_read(*args, **kwargs):
        raise AssertionError("load_weights=False must not read the weights file")

    monkeypatch.setattr(vgg16_weights, "vgg16_convs", no_read)
    bare = model_lib.build_model(vgg16_config(), image_size=64, load_weights=False)
    bare.load_state_dict(pretrained.state_dict())  # same keys and shapes
    # The same parameters train, so a resumed run's optimizer state fits.
    trains = [p.requires_grad for p in pretrained.parameters()]
    assert [p.requires_grad for p in bare.parameters()] == trains
    scratch = model_lib.build_model(vgg16_config("none"), image_size=64, load_weights=False)
    assert all(p.requires_grad for p in scratch.parameters())  # from scratch: all 5 stages
