"""Occluders drawn from code, for categories that no installed asset covers well.

Noto emoji and openclipart have no face masks and few scarves, cigarettes or microphones. Each
drawer here returns an RGBA Pillow image of one variant; shapes are drawn at 4x and downsampled so
edges are anti-aliased. Every drawer is deterministic: variety comes from its arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_SS = 4  # supersampling factor


def _canvas(w: int, h: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("RGBA", (w * _SS, h * _SS), (0, 0, 0, 0))
    return im, ImageDraw.Draw(im)


def _finish(im: Image.Image) -> Image.Image:
    im = im.resize((im.width // _SS, im.height // _SS), Image.Resampling.LANCZOS)
    return im.crop(im.getbbox())


def _overlay(im: Image.Image, layer: Image.Image) -> None:
    """Composites `layer` onto `im` only where `im` is already opaque (texture inside a shape)."""
    inside = np.asarray(im.getchannel("A")).copy()
    la = np.minimum(np.asarray(layer.getchannel("A")), inside)
    layer.putalpha(Image.fromarray(la))
    merged = Image.alpha_composite(im, layer)
    merged.putalpha(Image.fromarray(inside))
    im.paste(merged)


def _shade(rgb: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, c * k))) for c in rgb)


def _mask_outline(w: float, h: float, s: float) -> list[tuple[float, float]]:
    """A face-mask body: the top edge rises over the nose, the bottom edge dips to the chin."""
    top = [(x, 0.18 * h - 0.16 * h * math.sin(math.pi * x / w)) for x in np.linspace(0, w, 24)]
    bot = [(x, 0.86 * h + 0.14 * h * math.sin(math.pi * x / w)) for x in np.linspace(w, 0, 24)]
    return [(x * s, y * s) for x, y in top + bot]


def face_mask(color=(150, 200, 230), style: str = "surgical", pattern: str = "") -> Image.Image:
    """Surgical (pleated), cloth (optionally striped or dotted) or N95 face mask with ear loops."""
    w, h, loop = 200, 120, 22
    im, d = _canvas(w + 2 * loop, h)
    body = [(x + loop * _SS, y) for x, y in _mask_outline(w, h, _SS)]
    d.polygon(body, fill=(*color, 255))
    if style == "n95":
        d.line(
            [((loop + w / 2) * _SS, 2 * _SS), ((loop + w / 2) * _SS, h * _SS)],
            fill=(*_shade(color, 0.8), 255),
            width=2 * _SS,
        )
        d.ellipse(
            [
                ((loop + w / 2 - 12) * _SS, 0.5 * h * _SS),
                ((loop + w / 2 + 12) * _SS, 0.66 * h * _SS),
            ],
            fill=(*_shade(color, 0.9), 255),
        )
    elif style == "surgical":
        for frac in (0.38, 0.55, 0.72):  # pleats
            y = frac * h * _SS
            d.line(
                [((loop + 4) * _SS, y), ((loop + w - 4) * _SS, y)],
                fill=(*_shade(color, 0.82), 255),
                width=2 * _SS,
            )
    if pattern:
        layer, ld = _canvas(w + 2 * loop, h)
        accent = (*_shade(color, 0.55), 255) if sum(color) > 300 else (235, 235, 235, 255)
        if pattern == "stripes":
            for x in range(-h, w + h, 26):
                ld.polygon(
                    [
                        ((loop + x) * _SS, 0),
                        ((loop + x + 10) * _SS, 0),
                        ((loop + x + 10 + h) * _SS, h * _SS),
                        ((loop + x + h) * _SS, h * _SS),
                    ],
                    fill=accent,
                )
        else:
            for y in range(10, h, 18):
                for x in range(8 + (y // 18 % 2) * 9, w, 18):
                    ld.ellipse(
                        [((loop + x) * _SS, y * _SS), ((loop + x + 6) * _SS, (y + 6) * _SS)],
                        fill=accent,
                    )
        _overlay(im, layer)
    edge = (*_shade(color, 0.7), 255)
    d.line([*body, body[0]], fill=edge, width=2 * _SS)
    strap = (*_shade(color, 0.9), 255) if style != "n95" else (60, 60, 60, 255)
    # ear loops: the outer halves of two ellipses centred on the body's side edges
    r, y0, y1 = (loop - 2) * _SS, 0.2 * h * _SS, 0.8 * h * _SS
    for cx, start, end in ((loop * _SS, 90, 270), ((loop + w) * _SS, 270, 90)):
        d.arc([cx - r, y0, cx + r, y1], start, end, fill=strap, width=3 * _SS)
    return _finish(im)


def scarf(color=(180, 40, 40), stripe=(240, 220, 200), knit: bool = True) -> Image.Image:
    """A scarf wound round the lower face and neck, one end hanging down."""
    w, h = 240, 170
    im, d = _canvas(w, h)
    band = [(0, 30), (w * 0.5, 5), (w, 30), (w, 95), (w * 0.5, 80), (0, 95)]
    d.polygon([(x * _SS, y * _SS) for x, y in band], fill=(*color, 255))
    tail = [(150, 70), (195, 75), (200, 160), (160, 165)]
    d.polygon([(x * _SS, y * _SS) for x, y in tail], fill=(*_shade(color, 0.85), 255))
    if stripe:
        for y in (40, 62):
            d.line(
                [(0, (y + 2) * _SS), (w * 0.5 * _SS, (y - 22) * _SS), (w * _SS, (y + 2) * _SS)],
                fill=(*stripe, 255),
                width=7 * _SS,
            )
        d.line([(153 * _SS, 130 * _SS), (199 * _SS, 133 * _SS)], fill=(*stripe, 255), width=7 * _SS)
    if knit:
        layer, ld = _canvas(w, h)
        for x in range(0, w, 9):  # vertical rib texture
            ld.line([(x * _SS, 0), (x * _SS, h * _SS)], fill=(*_shade(color, 0.75), 110), width=_SS)
        _overlay(im, layer)
    for x in range(162, 200, 7):  # fringe
        d.line(
            [(x * _SS, 163 * _SS), ((x - 1) * _SS, 170 * _SS)], fill=(*color, 255), width=2 * _SS
        )
    return _finish(im)


def cigarette(length: int = 150, filter_color=(210, 140, 60), lit: bool = True) -> Image.Image:
    """A cigarette lying horizontally: filter on the left, paper, ash and a glowing tip."""
    t = 14
    im, d = _canvas(length + 4, t + 4)
    f = int(length * 0.28)
    d.rounded_rectangle(
        [2 * _SS, 2 * _SS, (2 + f) * _SS, (2 + t) * _SS], radius=3 * _SS, fill=(*filter_color, 255)
    )
    for k in range(6):  # cork speckles
        x = 2 + 4 + k * f // 6
        d.ellipse(
            [x * _SS, 6 * _SS, (x + 2) * _SS, 8 * _SS], fill=(*_shade(filter_color, 0.7), 255)
        )
    d.rectangle(
        [(2 + f) * _SS, 2 * _SS, (length - 8) * _SS, (2 + t) * _SS], fill=(245, 245, 240, 255)
    )
    if lit:
        d.rectangle(
            [(length - 8) * _SS, 2 * _SS, (length - 2) * _SS, (2 + t) * _SS],
            fill=(110, 105, 100, 255),
        )
        d.ellipse(
            [(length - 4) * _SS, 4 * _SS, (length + 2) * _SS, t * _SS], fill=(255, 90, 20, 255)
        )
    return _finish(im)


def microphone(head=(170, 170, 175), handle=(30, 30, 30)) -> Image.Image:
    """A hand-held microphone, head up: a meshed ball on a tapered handle."""
    w, h = 70, 200
    im, d = _canvas(w, h)
    d.polygon(
        [(20 * _SS, 60 * _SS), (50 * _SS, 60 * _SS), (42 * _SS, 198 * _SS), (28 * _SS, 198 * _SS)],
        fill=(*handle, 255),
    )
    d.ellipse([5 * _SS, 2 * _SS, 65 * _SS, 70 * _SS], fill=(*head, 255))
    mesh, md = _canvas(w, h)
    for k in range(8, 66, 7):
        md.line([(k * _SS, 0), (k * _SS, 72 * _SS)], fill=(*_shade(head, 0.7), 255), width=_SS)
        md.line([(0, k * _SS), (w * _SS, k * _SS)], fill=(*_shade(head, 0.7), 255), width=_SS)
    mesh.putalpha(
        Image.fromarray(
            np.asarray(mesh.getchannel("A"))
            * (np.arange(h * _SS) < 60 * _SS)[:, None].astype(np.uint8)
        )
    )
    _overlay(im, mesh)
    return _finish(im)


def sunglasses(lens=(25, 25, 30), frame=(20, 20, 20), shape: str = "round") -> Image.Image:
    """Two dark lenses and a bridge, seen from the front (temples hidden behind the head)."""
    w, h = 220, 80
    im, d = _canvas(w, h)
    boxes = [(8, 8, 100, 72), (120, 8, 212, 72)]
    for x0, y0, x1, y1 in boxes:
        box = [x0 * _SS, y0 * _SS, x1 * _SS, y1 * _SS]
        if shape == "round":
            d.ellipse(box, fill=(*lens, 245), outline=(*frame, 255), width=5 * _SS)
        else:  # aviator-ish: a rounded trapezoid
            d.rounded_rectangle(
                box, radius=26 * _SS, fill=(*lens, 245), outline=(*frame, 255), width=5 * _SS
            )
    d.line(
        [(98 * _SS, 26 * _SS), (110 * _SS, 18 * _SS), (122 * _SS, 26 * _SS)],
        fill=(*frame, 255),
        width=6 * _SS,
    )
    d.line([(0, 24 * _SS), (10 * _SS, 24 * _SS)], fill=(*frame, 255), width=6 * _SS)
    d.line([(210 * _SS, 24 * _SS), (w * _SS, 24 * _SS)], fill=(*frame, 255), width=6 * _SS)
    out = _finish(im)
    # a soft highlight on each lens makes them read as glass
    hl = Image.new("RGBA", out.size, (0, 0, 0, 0))
    hd = ImageDraw.Draw(hl)
    for x0 in (20, 132):
        hd.ellipse([x0, 16, x0 + 26, 30], fill=(255, 255, 255, 70))
    hl = hl.filter(ImageFilter.GaussianBlur(3))
    rgb = Image.alpha_composite(out, hl)
    rgb.putalpha(out.getchannel("A"))
    return rgb


# category -> {variant name: drawer}
DRAWERS: dict[str, dict[str, Callable[[], Image.Image]]] = {
    "mask": {
        "surgical_blue": lambda: face_mask((150, 200, 230), "surgical"),
        "surgical_white": lambda: face_mask((238, 240, 242), "surgical"),
        "surgical_black": lambda: face_mask((40, 40, 45), "surgical"),
        "surgical_pink": lambda: face_mask((240, 180, 200), "surgical"),
        "n95_white": lambda: face_mask((245, 245, 240), "n95"),
        "cloth_navy_stripes": lambda: face_mask((30, 45, 90), "cloth", "stripes"),
        "cloth_red_dots": lambda: face_mask((190, 40, 50), "cloth", "dots"),
        "cloth_khaki": lambda: face_mask((170, 160, 120), "cloth"),
    },
    "scarf": {
        "red_cream": lambda: scarf((180, 40, 40), (240, 220, 200)),
        "navy_plain": lambda: scarf((35, 45, 85), None),
        "green_yellow": lambda: scarf((40, 110, 60), (230, 200, 60)),
        "grey_knit": lambda: scarf((120, 120, 125), (200, 200, 205)),
        "mustard_plain": lambda: scarf((205, 150, 40), None, knit=False),
    },
    "cigarette": {
        "long_lit": lambda: cigarette(150, (210, 140, 60), True),
        "short_lit": lambda: cigarette(100, (210, 140, 60), True),
        "white_filter": lambda: cigarette(130, (235, 230, 220), False),
        "slim_lit": lambda: cigarette(170, (200, 120, 50), True),
    },
    "mic": {
        "silver": lambda: microphone((175, 175, 180), (30, 30, 30)),
        "black": lambda: microphone((70, 70, 75), (20, 20, 20)),
    },
    "sunglasses": {
        "round_black": lambda: sunglasses((25, 25, 30), (15, 15, 15), "round"),
        "aviator_brown": lambda: sunglasses((70, 45, 25), (170, 140, 60), "aviator"),
    },
}
