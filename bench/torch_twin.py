"""A PyTorch twin of jaxinpaint's inpainting GAN, for the train-step benchmark only.

Same layer shapes as `jaxinpaint.models` (read from the same `config.gen` / `config.disc`),
the same partial convolution (`jaxinpaint.layers.pconv`: channel sum of the mask, one
single-channel window sum, no gradient through the mask), the same losses
(`jaxinpaint.losses`: L1 valid/hole, perceptual and style on VGG16 pool1–3, TV on the dilated
hole, hinge or non-saturating adversarial terms) and the same update as
`jaxinpaint.gan.InpaintingGAN.train_step`: one forward pass, generator gradients from the
generator loss and discriminator gradients from the discriminator loss (a simultaneous update),
one Adam step each.

It is written as the fastest plain PyTorch a user would write on a CPU: channels_last tensors
and weights, `torch.autograd.grad` restricted to each player's parameters (so no weight
gradients are computed for the other player or for the frozen VGG), ground-truth VGG features
under `no_grad`, Adam with `foreach`. Stride-2 convs use torch's symmetric padding `k // 2`;
XLA's "SAME" pads those asymmetrically, which shifts the window by one pixel but leaves every
shape and FLOP count unchanged. Flattening for the discriminators' linear layer uses NHWC
order, like the JAX model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from data_pipeline import vgg16_weights

# torchvision's ImageNet statistics (jaxinpaint.vgg uses the same numbers).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_CFG = vgg16_weights.CFG[:10]  # VGG16 up to pool3, as jaxinpaint.vgg
_EPS = 1e-8


def _conv(cin: int, cout: int, kernel: int = 3, dilation: int = 1, stride: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(
        cin, cout, kernel, stride=stride, padding=dilation * (kernel // 2), dilation=dilation
    )
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    return conv


class PartialConv2d(nn.Module):
    """NVIDIA's multi-channel partial conv for a channel-uniform mask `[B, 1, H, W]`.

    The mask stays one channel wide: jaxinpaint broadcasts it to every channel and sums it back,
    which equals `cin ×` the single-channel mask, so the window sum is the same number.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.conv = _conv(cin, cout, kernel, stride=stride)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        conv = self.conv
        cin = conv.in_channels
        kh, kw = conv.kernel_size
        raw = F.conv2d(x * mask, conv.weight, None, conv.stride, conv.padding)
        with torch.no_grad():
            # A box sum: avg_pool2d with divisor 1 is the exact sum, faster than a ones-conv.
            window_sum = cin * F.avg_pool2d(
                mask, (kh, kw), conv.stride, conv.padding, divisor_override=1
            )
            update = window_sum.clamp(0.0, 1.0)
            ratio = (kh * kw * cin) / (window_sum + _EPS) * update
        y = (raw * ratio + conv.bias.view(1, -1, 1, 1)) * update
        return y, update


def _fold_taps(kernel: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    t0, t1, t2 = kernel.split(1, dim)
    return torch.cat([t0, t1 + t2], dim), torch.cat([t0 + t1, t2], dim)


def upsample2x_conv3x3(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """`conv(nearest ×2 upsampling of x)` as four 2×2 convolutions at x's resolution, one per
    output phase: the formulation of `jaxinpaint.models.generator.upsample2x_conv3x3`, so that
    both sides do the same multiply-adds."""
    phases = []
    for a, rows in enumerate(_fold_taps(conv.weight, 2)):
        row = []
        for b, kernel in enumerate(_fold_taps(rows, 3)):
            padded = F.pad(x, (1 - b, b, 1 - a, a))  # (left, right, top, bottom)
            row.append(F.conv2d(padded, kernel, conv.bias))
        phases.append(torch.stack(row, dim=-1))  # [N, C, H, W, 2 (column parity)]
    n, c, h, w = x.shape[0], conv.out_channels, x.shape[2], x.shape[3]
    y = torch.stack(phases, dim=3).reshape(n, c, 2 * h, 2 * w)  # [N, C, H, 2, W, 2] → ×2
    return y.contiguous(memory_format=torch.channels_last)


class Generator(nn.Module):
    """`Generator(gen_config)(occluded, hole) -> (pred, composite)`, NCHW images in [0, 1]."""

    def __init__(self, gen_config):
        super().__init__()
        widths = tuple(gen_config.widths)
        pwidths = tuple(gen_config.partial_widths)
        pkernels = tuple(gen_config.partial_kernels)
        levels = len(widths)
        self.levels = levels
        self.dropout_from = levels - gen_config.dropout_levels
        self.dropout = nn.Dropout(gen_config.dropout_rate)

        cin = 4  # image ⊕ hole
        self.vanilla = nn.ModuleList()
        for width in widths:
            self.vanilla.append(nn.ModuleList([_conv(cin, width), _conv(width, width)]))
            cin = width
        cin = 3
        self.partial = nn.ModuleList()
        for i, (width, k) in enumerate(zip(pwidths, pkernels, strict=True)):
            self.partial.append(PartialConv2d(cin, width, k, stride=1 if i == 0 else 2))
            cin = width

        aw = gen_config.atrous_width
        self.fuse = _conv(widths[-1] + pwidths[-1], aw, kernel=1)
        self.atrous = nn.ModuleList(_conv(aw, aw, dilation=r) for r in gen_config.atrous_rates)
        self.up = nn.ModuleDict()
        self.dec = nn.ModuleDict()
        cin = aw
        for i in reversed(range(levels - 1)):
            width = widths[i]
            self.up[str(i)] = _conv(cin, width)
            self.dec[str(i)] = nn.ModuleList(
                [_conv(width + widths[i] + pwidths[i], width), _conv(width, width)]
            )
            cin = width
        self.out = _conv(cin, 3, kernel=1)

    def forward(
        self, occluded: torch.Tensor, hole: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        valid = 1.0 - hole
        known = occluded * valid
        vanilla = []
        x = torch.cat([known, hole], dim=1)
        for i, (conv_a, conv_b) in enumerate(self.vanilla):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = F.relu(conv_b(F.relu(conv_a(x))))
            if i >= self.dropout_from:
                x = self.dropout(x)
            vanilla.append(x)
        partial = []
        x, mask = known, valid
        for pconv in self.partial:
            x, mask = pconv(x, mask)
            x = F.relu(x)
            partial.append(x)

        x = F.relu(self.fuse(torch.cat([vanilla[-1], partial[-1]], dim=1)))
        for conv in self.atrous:
            x = F.relu(conv(x))
        for i in reversed(range(self.levels - 1)):
            x = F.relu(upsample2x_conv3x3(x, self.up[str(i)]))
            x = torch.cat([x, vanilla[i], partial[i]], dim=1)
            conv_a, conv_b = self.dec[str(i)]
            x = F.relu(conv_b(F.relu(conv_a(x))))
        pred = torch.sigmoid(self.out(x))
        return pred, pred * hole + occluded * valid


class Discriminator(nn.Module):
    """Strided convs + LeakyReLU(0.2), flatten (NHWC order), linear → logit `[B]`."""

    def __init__(self, widths, kernel: int, image_size: int):
        super().__init__()
        convs, cin, size = [], 3, image_size
        for width in widths:
            convs.append(nn.Conv2d(cin, width, kernel, stride=2, padding=kernel // 2))
            cin, size = width, -(-size // 2)
        self.convs = nn.ModuleList(convs)
        self.logit = nn.Linear(cin * size * size, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img * 2.0 - 1.0
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        # NHWC flatten: a free view of a channels_last tensor, and the JAX model's order.
        return self.logit(x.permute(0, 2, 3, 1).flatten(1))[:, 0]


class VGG16Features(nn.Module):
    """Frozen VGG16 up to pool3 (torchvision's layer shapes); returns `[pool1, pool2, pool3]`."""

    def __init__(self):
        super().__init__()
        convs, cin = [], 3
        for v in VGG_CFG:
            if v != "M":
                convs.append(nn.Conv2d(cin, v, 3, padding=1))
                cin = v
        self.convs = nn.ModuleList(convs)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        self.requires_grad_(False)

    def load_jax_params(self, params: dict) -> None:
        """Copies `jaxinpaint.vgg.load_vgg16_params()["params"]` (HWIO numpy) into the convs."""
        with torch.no_grad():
            for i, conv in enumerate(self.convs):
                p = params[f"Conv_{i}"]
                conv.weight.copy_(torch.from_numpy(p["kernel"]).permute(3, 2, 0, 1))
                conv.bias.copy_(torch.from_numpy(p["bias"]))

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        x = (img - self.mean) / self.std
        feats, convs = [], iter(self.convs)
        for v in VGG_CFG:
            if v == "M":
                x = F.max_pool2d(x, 2)
                feats.append(x)
            else:
                x = F.relu(next(convs)(x))
        return feats


# ---- losses (the formulas of jaxinpaint.losses) ------------------------------------------------


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix `[B, C, C]` ÷ C·H·W."""
    b, c, h, w = feat.shape
    f = feat.reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def generator_loss(pred, composite, target, hole, feats_out, feats_comp, feats_gt, logits_fake, w):
    err = (pred - target).abs()
    terms = {"l1_valid": ((1.0 - hole) * err).mean(), "l1_hole": (hole * err).mean()}
    if feats_out is not None:  # None: no VGG features (both their weights are 0), no terms
        terms["perceptual"] = sum(
            (o - g).abs().mean() + (c - g).abs().mean()
            for o, c, g in zip(feats_out, feats_comp, feats_gt, strict=True)
        )
        style = 0.0
        for o, c, g in zip(feats_out, feats_comp, feats_gt, strict=True):
            gram_gt = gram(g)
            style = style + (gram(o) - gram_gt).abs().mean() + (gram(c) - gram_gt).abs().mean()
        terms["style"] = style
    p = F.max_pool2d(hole, 3, stride=1, padding=1) * composite  # TV over the dilated hole
    terms["tv"] = (p[:, :, 1:] - p[:, :, :-1]).abs().mean() + (
        p[..., 1:] - p[..., :-1]
    ).abs().mean()
    weight = {
        "l1_valid": w.valid,
        "l1_hole": w.hole,
        "perceptual": w.perceptual,
        "style": w.style,
        "tv": w.tv,
    }
    loss = sum(weight[k] * v for k, v in terms.items())
    for logits in logits_fake.values():
        adv = -logits.mean() if w.adv_loss == "hinge" else F.softplus(-logits).mean()
        loss = loss + w.adv * adv
    return loss


def discriminator_loss(logits_real, logits_fake, kind: str):
    loss = 0.0
    for name in logits_real:
        real, fake = logits_real[name], logits_fake[name]
        if kind == "hinge":
            loss = loss + F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        else:
            loss = loss + F.softplus(-real).mean() + F.softplus(fake).mean()
    return loss


def hole_crop_origins(hole: torch.Tensor, size: int) -> list[tuple[int, int]]:
    """Top-left (row, col) of a `size`² window centred on each hole's bbox, clamped inside."""
    _, _, h, w = hole.shape
    occupied = hole[:, 0] > 0.5
    origins = []
    for occ in occupied:
        rows = torch.nonzero(occ.any(dim=1)).flatten().tolist()
        cols = torch.nonzero(occ.any(dim=0)).flatten().tolist()
        r = (rows[0] + rows[-1]) / 2 if rows else (h - 1) / 2
        c = (cols[0] + cols[-1]) / 2 if cols else (w - 1) / 2
        top = min(max(round(r - (size - 1) / 2), 0), h - size)
        left = min(max(round(c - (size - 1) / 2), 0), w - size)
        origins.append((top, left))
    return origins


def crop(img: torch.Tensor, origins, size: int) -> torch.Tensor:
    return torch.stack([img[i, :, t : t + size, s : s + size] for i, (t, s) in enumerate(origins)])


class TwinGAN:
    """Modules, optimizers and one training step, mirroring `jaxinpaint.gan.InpaintingGAN`."""

    def __init__(self, config, vgg_params: dict | None = None, seed: int = 0, device="cpu"):
        torch.manual_seed(seed)
        self.config = config
        self.device = torch.device(device)
        size = config.image_size
        self.local_size = config.disc.local_size
        self.generator = Generator(config.gen)
        self.discriminators = nn.ModuleDict(
            {
                "global": Discriminator(config.disc.global_widths, config.disc.kernel, size),
                "local": Discriminator(
                    config.disc.local_widths, config.disc.kernel, self.local_size
                ),
            }
        )
        self.vgg = VGG16Features()
        # As `InpaintingGAN.uses_vgg`: VGG16 runs only when a loss term reads its features.
        self.uses_vgg = config.loss.perceptual > 0 or config.loss.style > 0
        if vgg_params is not None:
            self.vgg.load_jax_params(vgg_params)
        for module in (self.generator, self.discriminators, self.vgg):
            module.to(self.device, memory_format=torch.channels_last)
        self.gen_params = list(self.generator.parameters())
        self.disc_params = list(self.discriminators.parameters())
        go, do = config.gen_optim, config.disc_optim
        self.gen_opt = torch.optim.Adam(self.gen_params, go.lr, betas=(go.b1, go.b2), foreach=True)
        self.disc_opt = torch.optim.Adam(
            self.disc_params, do.lr, betas=(do.b1, do.b2), foreach=True
        )

    def prepare_batch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """uint8 NHWC numpy/torch `occluded`, `original`, `mask` → float NCHW channels_last on
        the twin's device."""

        def to_nchw(a):
            t = torch.as_tensor(a).to(self.device).permute(0, 3, 1, 2)
            return t.contiguous(memory_format=torch.channels_last)

        occluded = to_nchw(batch["occluded"]).float() / 255.0
        target = to_nchw(batch["original"]).float() / 255.0
        hole = (to_nchw(batch["mask"]) > 0).float()
        return occluded, target, hole

    def losses(self, occluded, target, hole):
        """Forward pass of both players: `(gen_loss, disc_loss)`."""
        pred, composite = self.generator(occluded, hole)
        origins = hole_crop_origins(hole, self.local_size)
        fake = {"global": composite, "local": crop(composite, origins, self.local_size)}
        real = {"global": target, "local": crop(target, origins, self.local_size)}
        logits_fake, logits_real = {}, {}
        for name, disc in self.discriminators.items():
            both = disc(torch.cat([fake[name], real[name]]))
            logits_fake[name], logits_real[name] = both.chunk(2)
        feats_out = feats_comp = feats_gt = None
        if self.uses_vgg:
            halves = [f.chunk(2) for f in self.vgg(torch.cat([pred, composite]))]
            feats_out, feats_comp = [h[0] for h in halves], [h[1] for h in halves]
            with torch.no_grad():
                feats_gt = self.vgg(target)
        kind = self.config.loss.adv_loss
        gen_loss = generator_loss(
            pred,
            composite,
            target,
            hole,
            feats_out,
            feats_comp,
            feats_gt,
            logits_fake,
            self.config.loss,
        )
        return gen_loss, discriminator_loss(logits_real, logits_fake, kind)

    def train_step(self, batch: dict) -> tuple[float, float]:
        """One generator and one discriminator Adam update from one shared forward pass."""
        self.generator.train()
        occluded, target, hole = self.prepare_batch(batch)
        gen_loss, disc_loss = self.losses(occluded, target, hole)
        gen_grads = torch.autograd.grad(gen_loss, self.gen_params, retain_graph=True)
        disc_grads = torch.autograd.grad(disc_loss, self.disc_params)
        for params, grads in ((self.gen_params, gen_grads), (self.disc_params, disc_grads)):
            for p, g in zip(params, grads, strict=True):
                p.grad = g
        self.gen_opt.step()
        self.disc_opt.step()
        self.gen_opt.zero_grad(set_to_none=True)
        self.disc_opt.zero_grad(set_to_none=True)
        return gen_loss.detach(), disc_loss.detach()
