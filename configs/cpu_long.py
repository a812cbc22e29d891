r"""The demo's recipe at 128×128 for a longer CPU run (≤ 2 h on 2 cores).

    python launch/train.py --config=configs/cpu_long.py --workdir=runs/cpu_long

Twice the demo's resolution, so that a photo's face (the sample photos' are 160 px) is filled
from a closer scale, with a fifth level so the bottleneck stays 8×8, and the demo's recipe
(biharmonic start, no VGG16 in the step, light adversarial term, moving average).
"""

from configs import demo


def get_config(arg=None):
    """The demo config at 128², one level deeper, trained longer."""
    c = demo.get_config(arg)
    c.image_size = 128
    c.total_steps = 6000

    c.gen.widths = (16, 32, 64, 128, 128)
    c.gen.partial_widths = (16, 32, 64, 64, 64)
    c.gen.partial_kernels = (7, 5, 5, 3, 3)

    c.disc.global_widths = (16, 32, 64, 64, 64)
    c.disc.local_widths = (16, 32, 64, 64)
    c.disc.local_size = 64

    c.log_every = 50
    c.sample_every = 1000
    c.checkpoint_every = 500
    c.eval_every = 1000
    c.eval_examples = 64
    return c
