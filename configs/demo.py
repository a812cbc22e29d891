r"""A small version of the full model that learns visibly on 2 CPU cores in minutes.

    python launch/train.py --config=configs/demo.py --workdir=runs/demo [--config.total_steps=N]

64×64 faces, narrow widths, four levels; the losses and the training code are the full model's.
"""

from configs import full


def get_config(arg=None):
    """Demo config: the full config, shrunk."""
    del arg
    c = full.get_config()
    c.image_size = 64
    c.global_batch_size = 4  # the seed's batch; VGG features dominate the step on a CPU
    c.total_steps = 1500  # ~6 steps/s on 2 idle cores (no VGG16 in the step)

    c.gen.widths = (16, 32, 64, 128)
    c.gen.partial_widths = (16, 32, 64, 64)
    c.gen.partial_kernels = (5, 5, 3, 3)
    c.gen.atrous_width = 64
    c.gen.atrous_rates = (2, 4)

    c.disc.global_widths = (16, 32, 64, 64)
    c.disc.local_widths = (16, 32, 64)
    c.disc.local_size = 32

    # The recipe that learns in minutes (docs/inpainter.md, recipe ablation): start from the
    # biharmonic fill of the hole and learn its correction, on mirrored, colour-jittered and
    # slightly moved faces, with a heavier hole L1 than the seed's, a light adversarial term and
    # neither perceptual nor style term (no VGG16 in the step: 2.7x faster, as good on the
    # validation faces); validation, samples and inference use the weights' moving average.
    c.gen.coarse_fill = "biharmonic"
    c.data.augment = True
    c.data.augment_geometry = 0.05
    c.loss.hole = 20.0
    c.loss.perceptual = 0.0
    c.loss.style = 0.0
    c.loss.adv = 0.01

    c.gen_optim.lr = 2e-4  # a larger step than the seed's: the demo has minutes, not days
    c.gen_optim.ema = 0.995
    c.disc_optim.lr = 2e-4

    c.log_every = 25
    c.sample_every = 200
    c.num_samples = 6
    c.checkpoint_every = 200
    c.eval_every = 250  # validation faces: hole PSNR/SSIM, LPIPS; best kept in <workdir>/best
    c.eval_examples = 32
    return c
