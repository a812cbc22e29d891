"""Photo files for the data tests: good colour photos, every kind of bad input, sample faces."""

import os
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

from data_pipeline import faces, images, sample_faces


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(path, side=100_000):
    """A PNG header that claims side x side pixels (10 gigapixels) with almost no data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b""))


def colour_photo(side=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (side, side, 3), dtype=np.uint8)


def make_bad_files(d) -> dict[str, str]:
    """One file per bad-input kind in folder `d`; returns file name -> expected reason."""
    good = Image.fromarray(colour_photo())
    (d / "zero.jpg").write_bytes(b"")
    (d / "html.jpg").write_text("<html>not a photo</html>")
    good.save(d / "full.jpg", quality=95)
    data = (d / "full.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    os.remove(d / "full.jpg")
    Image.new("CMYK", (96, 96), (10, 200, 30, 0)).save(d / "cmyk.jpg")
    Image.fromarray(np.full((96, 96), 3000, np.uint16)).save(d / "gray16.png")
    cv2.imwrite(str(d / "rgb48.png"), np.full((96, 96, 3), 40000, np.uint16))
    Image.new("L", (96, 96), 128).save(d / "gray.png")
    Image.fromarray(np.repeat(colour_photo()[..., :1], 3, axis=-1)).save(d / "gray_as_rgb.png")
    Image.fromarray(colour_photo(20)).save(d / "tiny.png")
    _bomb_png(d / "bomb.png")
    os.symlink(d / "missing-target.jpg", d / "dangling.jpg")
    return {
        "zero.jpg": images.ZERO_BYTE,
        "html.jpg": images.NOT_AN_IMAGE,
        "truncated.jpg": images.TRUNCATED,
        "cmyk.jpg": images.CMYK,
        "gray16.png": images.HIGH_BIT_DEPTH,
        "rgb48.png": images.HIGH_BIT_DEPTH,
        "gray.png": images.GRAYSCALE,
        "gray_as_rgb.png": images.GRAYSCALE,
        "tiny.png": images.TOO_SMALL,
        "bomb.png": images.TOO_LARGE,
        "dangling.jpg": images.UNREADABLE,
    }


def detectable_sample_faces(n: int) -> list[str]:
    """Paths of the first `n` committed sample crops in which the Haar cascade finds a face."""
    found = []
    for name in sorted(os.listdir(sample_faces.SAMPLE_DIR)):
        if name.endswith(".jpg"):
            path = os.path.join(sample_faces.SAMPLE_DIR, name)
            if faces.detect_faces(images.load_rgb(path)):
                found.append(path)
                if len(found) == n:
                    return found
    raise AssertionError(f"only {len(found)} sample crops have a detectable face")
