"""Builds the occluder library: RGBA PNGs per category from installed assets and procedural drawing.

Sources (all redistributable; each PNG's origin and license go to `SOURCES.json`):
* Debian `fonts-noto-color-emoji` (Apache-2.0): emoji glyphs rendered by Pillow;
* Debian `openclipart-png` (public domain): clipart with alpha;
* `data_pipeline.procedural` (this project, Apache-2.0): masks, scarves, cigarettes, microphones,
  sunglasses.

The committed library in `data_pipeline/assets/occluders/` is what the builder and tests use. To
rebuild it (needs `apt-get install fonts-noto-color-emoji openclipart-png`):
    python -m data_pipeline.occluder_builder [--out=DIR]
Missing assets are reported and skipped, so the procedural part always builds.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from data_pipeline import atomic, procedural
from data_pipeline.categories import CATEGORIES

LIBRARY_DIR = os.path.join(os.path.dirname(__file__), "assets", "occluders")
SOURCES_FILE = "SOURCES.json"
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
OPENCLIPART_DIR = "/usr/share/openclipart/png"
MAX_SIDE = 160  # occluders cover at most a face; larger files would only add bytes
_EMOJI_PX = 109  # Noto Color Emoji is a bitmap font with this one strike

_SKIN = ("", "\U0001f3fb", "\U0001f3fc", "\U0001f3fd", "\U0001f3fe", "\U0001f3ff")

# category -> {variant name: emoji}. Hands come in the five Fitzpatrick skin tones.
EMOJI: dict[str, dict[str, str]] = {
    "book": {
        "open": "📖",
        "red": "📕",
        "green": "📗",
        "blue": "📘",
        "orange": "📙",
        "stack": "📚",
        "notebook": "📓",
        "ledger": "📒",
    },
    "box": {"parcel": "📦", "gift": "🎁", "file_box": "🗃"},
    "candy": {"wrapped": "🍬", "lollipop": "🍭", "chocolate": "🍫", "dango": "🍡"},
    "cap": {"baseball": "🧢", "top_hat": "🎩", "sun_hat": "👒", "graduation": "🎓", "helmet": "⛑"},
    "cigarette": {"emoji": "🚬"},
    "cup": {
        "coffee": "☕",
        "tea": "🍵",
        "soda": "🥤",
        "bubble_tea": "🧋",
        "beer": "🍺",
        "milk": "🥛",
    },
    "envelope": {"plain": "✉", "email": "📧", "incoming": "📨", "arrow": "📩", "love": "💌"},
    "fastfood": {
        "burger": "🍔",
        "fries": "🍟",
        "pizza": "🍕",
        "hot_dog": "🌭",
        "taco": "🌮",
        "sandwich": "🥪",
        "burrito": "🌯",
    },
    "flower": {
        "blossom": "🌸",
        "rose": "🌹",
        "hibiscus": "🌺",
        "sunflower": "🌻",
        "tulip": "🌷",
        "bouquet": "💐",
        "daisy": "🌼",
    },
    "fruit": {
        "apple": "🍎",
        "banana": "🍌",
        "orange": "🍊",
        "grapes": "🍇",
        "strawberry": "🍓",
        "watermelon": "🍉",
        "pear": "🍐",
        "peach": "🍑",
    },
    "glove": {"gloves": "🧤", "boxing": "🥊"},
    "hand": {
        "raised_1": "✋" + _SKIN[1],
        "back_2": "🤚" + _SKIN[2],
        "splayed_3": "🖐" + _SKIN[3],
        "wave_4": "👋" + _SKIN[4],
        "victory_5": "✌" + _SKIN[5],
        "thumbs_3": "👍" + _SKIN[3],
        "crossed_2": "🤞" + _SKIN[2],
        "raised_4": "✋" + _SKIN[4],
        "splayed_1": "🖐" + _SKIN[1],
        "back_5": "🤚" + _SKIN[5],
    },
    "keys": {"key": "🔑", "old_key": "🗝"},
    "mic": {"karaoke": "🎤", "studio": "🎙"},
    "pen": {"ballpoint": "🖊", "fountain": "🖋", "pencil": "✏", "crayon": "🖍"},
    "phone": {"mobile": "📱", "handset": "📞", "desk": "☎", "calling": "📲"},
    "scarf": {"emoji": "🧣"},
    "sunglasses": {"dark": "🕶", "goggles": "🥽", "glasses": "👓"},
}

# category -> {variant name: path under OPENCLIPART_DIR}, picked by eye for a clean alpha cut-out.
OPENCLIPART: dict[str, dict[str, str]] = {
    "book": {
        "closed": "education/books/book_01.png",
        "stack": "education/books/stack_of_books_01.png",
    },
    "box": {
        "cardboard": "containers/cardboard_box_jarno_vasa_.png",
        "closed": "containers/closed_box_juliane_krug_.png",
        "parcel": "containers/box_juliane_krug_s.png",
    },
    "candy": {
        "lollipop": "food/desserts/lollipop_dave_pena_01.png",
        "wrapped": "food/desserts/candy_02.png",
    },
    "cap": {
        "baseball": "recreation/sports/baseball_cap_ganson.png",
        "top_hat": "recreation/party/tophat_benji_park_01.png",
    },
    "cup": {
        "mug": "food/beverages/mug.png",
        "teacup": "food/beverages/teacup_ganson.png",
        "coffee_mug": "food/beverages/coffee_ganson.png",
    },
    "envelope": {
        "plain": "office/envelope_01.png",
        "addressed": "office/addressed_envelope_with_stamp_01.png",
        "yellow": "office/envelope_juliane_krug_01.png",
    },
    "fastfood": {
        "burger": "food/meats_and_eggs/hamburger_ganson.png",
        "pizza_slice": "food/pizza_slice_01.png",
    },
    "flower": {"roses": "unsorted/rose.png"},
    "fruit": {"apple": "food/fruit/an_apple_01.png"},
    "glove": {
        "baseball": "recreation/sports/baseball_glove_ganson.png",
        "mitten": "people/clothing/mitten_nathan_eady_01.png",
    },
    "hand": {"pointing": "computer/icons/pointing_hand_susan_park_01.png"},
    "keys": {"bunch": "tools/keyring_as_.png", "key": "tools/chiave_architetto_france_01.png"},
    "mic": {"headset": "electronics/casco_con_microfono_arch_01.png"},
    "pen": {"quill": "education/pen_01.png", "pencil": "education/pencil_01.png"},
    "phone": {
        "keypad": "office/slim_cell_phone_israel_c_01.png",
        "nokia": "office/telephone/mobile_phone_01.png",
        "handset": "office/telephone/phone_handset_gray_einar_01.png",
        "flip": "office/telephone/cellular_phone_shandy_br_.png",
    },
    "sunglasses": {"black": "people/clothing/sunglasses_01.png"},
}

# Categories with few assets get recoloured copies of an emoji: (suffix, hue turn, saturation x).
RECOLOURED: dict[tuple[str, str], tuple[tuple[str, float, float], ...]] = {
    ("glove", "gloves"): (("red", 0.45, 1.6), ("brown", 0.6, 0.9), ("grey", 0.0, 0.1)),
    ("keys", "key"): (("silver", 0.0, 0.1), ("copper", 0.95, 1.0)),
    ("keys", "old_key"): (("brass", 0.45, 1.8),),
}

_LICENSES = {
    "emoji": "Apache-2.0 (Noto Color Emoji, Debian fonts-noto-color-emoji)",
    "openclipart": "public domain (openclipart.org, Debian openclipart-png)",
    "procedural": "Apache-2.0 (drawn by data_pipeline/procedural.py)",
}


def _fit(im: Image.Image) -> Image.Image:
    im = im.convert("RGBA")
    box = im.getchannel("A").getbbox()  # crop to the visible object, not the canvas
    im = im.crop(box) if box else im
    im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return im


def recolour(im: Image.Image, hue_turn: float, saturation: float) -> Image.Image:
    """`im` with its hue turned by `hue_turn` (fraction of a circle) and saturation scaled."""
    hsv = np.asarray(im.convert("RGB").convert("HSV")).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + hue_turn * 256) % 256
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
    out = Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGBA")
    out.putalpha(im.getchannel("A"))
    return out


def render_emoji(text: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    im = Image.new("RGBA", (_EMOJI_PX * 3, _EMOJI_PX * 2), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((8, 8), text, font=font, embedded_color=True)
    return _fit(im)


def load_clipart(path: str) -> Image.Image:
    with Image.open(path) as im:
        im.draft("RGBA", (MAX_SIDE * 4, MAX_SIDE * 4))
        if im.width * im.height > 40_000_000:
            raise ValueError(f"{path}: {im.width}x{im.height} px is too large for a clipart")
        return _fit(im)


def build(out_dir: str = LIBRARY_DIR, log=print) -> dict[str, int]:
    """Writes `<out_dir>/<category>/<source>_<variant>.png` and SOURCES.json; returns counts.

    The new library replaces `out_dir` only once complete, and PNGs that users dropped into a
    category folder (any file not listed in the old SOURCES.json) are carried over.
    """
    with atomic.folder(out_dir) as tmp:  # replaces out_dir only once complete
        sources: dict[str, dict[str, str]] = {}

        def save(cat: str, origin: str, name: str, im: Image.Image, detail: str) -> None:
            rel = f"{cat}/{origin}_{name}.png"
            im.save(os.path.join(tmp, rel), optimize=True)
            sources[rel] = {"source": detail, "license": _LICENSES[origin]}

        for cat in CATEGORIES:
            os.makedirs(os.path.join(tmp, cat))
        if os.path.isfile(EMOJI_FONT):
            font = ImageFont.truetype(EMOJI_FONT, _EMOJI_PX)
            for cat, table in EMOJI.items():
                for name, text in table.items():
                    codes = " ".join(f"U+{ord(c):04X}" for c in text)
                    glyph = render_emoji(text, font)
                    save(cat, "emoji", name, glyph, f"Noto Color Emoji {codes}")
                    for suffix, hue, sat in RECOLOURED.get((cat, name), ()):
                        save(
                            cat,
                            "emoji",
                            f"{name}_{suffix}",
                            recolour(glyph, hue, sat),
                            f"Noto Color Emoji {codes}, recoloured",
                        )
        else:
            log(
                f"warning: {EMOJI_FONT} not found (apt-get install fonts-noto-color-emoji); skipped"
            )
        for cat, table in OPENCLIPART.items():
            for name, rel in table.items():
                path = os.path.join(OPENCLIPART_DIR, rel)
                try:
                    save(cat, "openclipart", name, load_clipart(path), f"openclipart-png {rel}")
                except (OSError, ValueError) as e:
                    log(f"warning: skipped openclipart {rel}: {e}")
        for cat, table in procedural.DRAWERS.items():
            for name, draw in table.items():
                save(cat, "procedural", name, _fit(draw()), f"procedural.{cat}:{name}")

        _carry_user_files(out_dir, tmp)
        with open(os.path.join(tmp, SOURCES_FILE), "w", encoding="utf-8") as f:
            json.dump(dict(sorted(sources.items())), f, indent=1, ensure_ascii=False)
    return {cat: len(os.listdir(os.path.join(out_dir, cat))) for cat in CATEGORIES}


def _carry_user_files(old_dir: str, new_dir: str) -> None:
    """Copies PNGs a user added to the old library (not listed in its SOURCES.json)."""
    listed_path = os.path.join(old_dir, SOURCES_FILE)
    if not os.path.isfile(listed_path):
        return
    with open(listed_path, encoding="utf-8") as f:
        listed = set(json.load(f))
    for cat in CATEGORIES:
        folder = os.path.join(old_dir, cat)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            rel = f"{cat}/{name}"
            if name.lower().endswith(".png") and rel not in listed:
                shutil.copy2(os.path.join(folder, name), os.path.join(new_dir, rel))


def main(argv: list[str]) -> int:
    out = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--out=")), LIBRARY_DIR)
    counts = build(out)
    print(f"occluder library in {out}: {sum(counts.values())} PNGs")
    for cat, n in counts.items():
        print(f"  {cat:<11} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
