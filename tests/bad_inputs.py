"""A corpus of malformed and unusual inputs for every user-facing command (issue 15, "Measure").

`build_corpus(folder)` writes each input under `folder` and returns one `Case` per input: its
kind, the commands it applies to and what each should do with it. bench/bad_inputs.py runs the
cases through the command-line launchers and counts tracebacks, partial outputs and ordinary
photos refused; tests/test_bad_inputs.py checks the in-process readers and one folder run.

Layout under `folder`:
    photos/    one file per photo case (the faces of the good ones are distinct sample crops,
               so the dataset build's near-duplicate filter keeps them all)
    lama/      the same photos, each with a good `<stem>_mask.png` beside it (LaMa's pairing,
               which launch/reconstruct.py's folder mode reads), plus the mask cases: a good photo
               with the bad or unusual mask under test beside it
    bad_only/  only files that are not whole images (a build over it has no usable face)
    configs/, workdirs/, detectors/, datasets/: whole-command cases (corrupt or odd artefacts)

Outcomes, per command:
    ACCEPTED  the command uses it (reconstruct writes an output; the build keeps the face)
    REFUSED   the command stops with one clear line, a documented exit status and no output
    SKIPPED   a command over a folder goes on past it and names it with its reason
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import shutil
import struct
import zlib

import numpy as np
from PIL import ExifTags, Image

ACCEPTED = "accepted"
REFUSED = "refused with a clear error"
SKIPPED = "skipped with its reason"
EITHER = "refused or accepted, cleanly"  # e.g. train resuming where config.json is unreadable

LOADERS = ("load_photo", "load_rgb")  # in process: data_pipeline.images
COMMANDS = ("build_dataset", "cache_masks", "train", "evaluate", "reconstruct")


@dataclasses.dataclass
class Case:
    """One input. `expect` maps each command it applies to onto ACCEPTED, REFUSED or SKIPPED.

    photo cases: `path` in photos/, `lama` its copy in lama/ (with a good mask beside it),
    `size` its upright (width, height) when it is readable. mask cases: `path` is the mask
    under test in lama/, `photo` the photo it belongs to. Whole-command cases (workdir,
    detector, config, dataset, faces, output): `path` is the artefact, `args` extra flags.
    `skip` says why a case cannot be made here (e.g. chmod 000 does not stop root)."""

    name: str
    kind: str
    path: str
    expect: dict[str, str]
    lama: str | None = None
    photo: str | None = None
    size: tuple[int, int] | None = None
    args: tuple[str, ...] = ()
    note: str = ""
    skip: str = ""

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(self.expect)


# ---------------------------------------------------------------- pixels and file crafting


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(path, side=100_000):
    """A valid PNG header claiming side x side pixels (10 gigapixels) over almost no data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b""))


@functools.cache
def _faces(n: int = 45) -> tuple[np.ndarray, ...]:
    """`n` sample face crops (160x160 RGB) in which the Haar cascade finds a face, no two of them
    near-duplicates (the build would keep only one): the photo cases take the first 30, the
    special paths the 31st, the mask cases the rest."""
    from data_pipeline import faces, images, sample_faces

    found, seen = [], faces.Deduplicator(max_distance=8)  # wider than the build's
    for name in sorted(os.listdir(sample_faces.SAMPLE_DIR)):
        if not name.endswith(".jpg"):
            continue
        path = os.path.join(sample_faces.SAMPLE_DIR, name)
        rgb = images.load_rgb(path)
        # The build hashes aligned crops (slow to find: only for the photos it sees).
        crop = faces.read_face(path, 48, faces.DEFAULT_MARGIN, align=len(found) < 31)
        if (
            faces.detect_faces(rgb)
            and not isinstance(crop, str)
            and not seen.seen(faces.dhash(crop[0]))
        ):
            found.append(rgb)
            if len(found) == n:
                return tuple(found)
    raise AssertionError(f"only {len(found)} distinct sample crops have a detectable face")


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Orientation] = "Canon", orientation
    return exif.tobytes()


def _long_exif() -> bytes:
    """70 KB of EXIF: more than a JPEG's 64 KB APP1 segment holds."""
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = "x" * 70_000
    return exif.tobytes()


def _noise(shape) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (*shape, 3), np.uint8))


def _flip_byte(path, offset: int) -> None:
    data = bytearray(pathlib.Path(path).read_bytes())
    data[offset] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


def _truncate(path, fraction: float) -> None:
    data = pathlib.Path(path).read_bytes()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * fraction)])


def _chunk_offset(path, kind: bytes) -> int:
    """Offset of the first byte of the first `kind` chunk's data in a PNG."""
    data = pathlib.Path(path).read_bytes()
    return data.index(kind) + 4


def _photo_writers(faces: list[np.ndarray]):
    """(name, file name, writer(path), accepted by a user's photo reader, kept by the build).

    The build keeps a face only from colour 8-bit photos at least 48 px a side (the curation of
    data_pipeline.images.load_rgb); reconstruct converts everything that is a whole image."""
    it = iter(faces)
    face = lambda: Image.fromarray(next(it))

    def save(im, **kw):
        return lambda p: im.save(p, **kw)

    def write_bytes(data: bytes):
        return lambda p: pathlib.Path(p).write_bytes(data)

    def then(first, second):
        return lambda p: (first(p), second(p))

    gray_face = face().convert("L")
    rgba = face().convert("RGBA")
    alpha = np.full(rgba.size[::-1], 255, np.uint8)
    alpha[:20] = 0  # a transparent top band over an opaque face
    rgba.putalpha(Image.fromarray(alpha))
    wide = face()
    # 160x120 upright, stored on its side (120x160): the EXIF orientation turns it back
    tall_exif = face().crop((0, 20, 160, 140)).transpose(Image.Transpose.ROTATE_90)
    rgb48 = np.asarray(face()).astype(np.uint16) * 257
    return [
        # name, file, writer, user reader accepts, build keeps the face
        ("ok_jpeg", "ok_jpeg.jpg", save(face(), quality=95), True, True),
        ("ok_png", "ok_png.png", save(face()), True, True),
        ("ok_webp", "ok_webp.webp", save(face(), quality=95), True, True),
        ("ok_bmp", "ok_bmp.bmp", save(face()), True, True),
        ("png_bytes_named_jpg", "png_bytes.jpg", save(face(), format="PNG"), True, True),
        ("jpeg_bytes_named_png", "jpeg_bytes.png", save(face(), format="JPEG"), True, True),
        ("tiff_named_jpg", "tiff_bytes.jpg", save(face(), format="TIFF"), True, True),
        ("uppercase_extension", "UPPER.JPG", save(face(), quality=95), True, True),
        ("unicode_name", "photo é ü.jpg", save(face(), quality=95), True, True),
        ("progressive_jpeg", "progressive.jpg", save(face(), progressive=True), True, True),
        (
            "trailing_junk_jpeg",
            "trailing_junk.jpg",
            then(save(face(), quality=95), lambda p: open(p, "ab").write(b"\0junk" * 100)),
            True,
            True,
        ),
        (
            "exif_rotated_jpeg",
            "exif_rotated.jpg",
            save(tall_exif, quality=95, exif=_exif(6)),  # 6: rotate 270 to show upright
            True,
            True,
        ),
        (
            "garbled_exif_jpeg",
            "garbled_exif.jpg",
            save(face(), quality=95, exif=b"Exif\0\0MM\0*\0\0\0\x08\xff\xff" + b"\x07" * 40),
            True,
            True,
        ),
        ("palette_png", "palette.png", save(face().quantize(256)), True, True),
        ("rgba_png", "rgba.png", save(rgba), True, True),
        ("cmyk_jpeg", "cmyk.jpg", save(face().convert("CMYK"), quality=95), True, False),
        (
            "rgb_16bit_png",
            "rgb48.png",
            lambda p: __import__("cv2").imwrite(str(p), rgb48[..., ::-1]),
            True,
            False,
        ),
        (
            "gray_16bit_png",
            "gray16.png",
            save(Image.fromarray(np.asarray(gray_face).astype(np.uint16) * 257)),
            True,
            False,
        ),
        ("gray_jpeg", "gray.jpg", save(gray_face, quality=95), True, False),
        ("gray_alpha_png", "gray_alpha.png", save(gray_face.convert("LA")), True, False),
        ("one_bit_png", "one_bit.png", save(gray_face.convert("1")), True, False),
        (
            "palette_transparent_png",
            "palette_transparent.png",
            save(wide.quantize(255), transparency=0),
            True,
            True,
        ),
        (
            "float_tiff_named_png",
            "float32.png",
            save(Image.fromarray(np.asarray(gray_face, np.float32) / 255), format="TIFF"),
            True,
            False,
        ),
        ("one_pixel", "one_pixel.png", save(Image.new("RGB", (1, 1), (200, 30, 40))), True, False),
        ("tiny_8x8", "tiny8.png", save(face().resize((8, 8))), True, False),
        ("thin_2x600", "thin.png", save(face().resize((2, 600))), True, False),
        # Issue 40: one list of formats for a folder and a photo (folder mode skipped TIFF); a
        # strip whose short side is under 1/2048 of its long one broke the face finder's resize.
        ("ok_tiff", "ok_tiff.tif", save(face()), True, True),
        ("thin_1x2048", "thin_1x2048.png", save(face().resize((1, 2048))), True, False),
        ("thin_5000x2", "thin_5000x2.jpg", save(face().resize((5000, 2)), quality=95), True, False),
        # Metadata a JPEG output cannot hold, a result wider than WebP's 16383 px (--compare).
        ("exif_too_long_png", "exif_too_long.png", save(face(), exif=_long_exif()), True, True),
        ("wide_6000x40", "wide_6000x40.png", save(_noise((40, 6000))), True, False),
        ("zero_byte", "zero.jpg", write_bytes(b""), False, False),
        (
            "html_named_jpg",
            "html.jpg",
            write_bytes(b"<!doctype html><html>403</html>"),
            False,
            False,
        ),
        ("text_named_jpg", "text.jpg", write_bytes(b"just some text\n" * 20), False, False),
        ("random_bytes_png", "random.png", write_bytes(os.urandom(3000)), False, False),
        (
            "truncated_jpeg",
            "truncated.jpg",
            then(save(face(), quality=95), lambda p: _truncate(p, 0.5)),
            False,
            False,
        ),
        (
            "truncated_png",
            "truncated_png.png",  # not truncated.png: the mask cache takes file stems as ids
            then(save(face()), lambda p: _truncate(p, 0.5)),
            False,
            False,
        ),
        (
            "png_header_only",
            "header_only.png",
            then(save(face()), lambda p: _truncate(p, 33 / os.path.getsize(p))),
            False,
            False,
        ),
        (
            "png_bad_ihdr_crc",
            "bad_ihdr_crc.png",
            then(save(face()), lambda p: _flip_byte(p, 29)),  # the IHDR chunk's CRC
            False,
            False,
        ),
        (
            "png_garbled_idat",
            "garbled_idat.png",
            then(save(face()), lambda p: _flip_byte(p, _chunk_offset(p, b"IDAT") + 10)),
            False,
            False,
        ),
        ("bomb_png_100000x100000", "bomb.png", _bomb_png, False, False),
    ]


def _upright_size(path) -> tuple[int, int] | None:
    from data_pipeline import images

    try:
        return images.load_photo(path).shape[1::-1]
    except images.SkipImage:
        return None


def _mask_for(size: tuple[int, int]) -> Image.Image:
    """A mask (L) of a photo's size: a band across the eyes of a sample crop (none in a photo of
    under 4 pixels)."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    if w * h < 4:  # the band would be the whole photo: refused as an inverted mask
        return Image.fromarray(mask)
    mask[int(h * 0.35) : max(int(h * 0.5), 1), int(w * 0.25) : max(int(w * 0.75), 1)] = 255
    return Image.fromarray(mask)


# ---------------------------------------------------------------------------- the corpus


def build_corpus(
    folder, workdir=None, detector=None, dataset=None, commands=COMMANDS + LOADERS
) -> list[Case]:
    """Writes the corpus under `folder` and returns its cases (see the module docstring).

    With a trained inpainter `workdir`, a detector checkpoint `detector` and a built `dataset`,
    the cases that corrupt copies of them are added too; cases that apply to none of `commands`
    are left out."""
    folder = os.path.abspath(folder)
    dirs = {
        k: os.path.join(folder, k)
        for k in (
            "photos",
            "lama",
            "bad_only",
            "empty",
            "configs",
            "workdirs",
            "detectors",
            "datasets",
        )
    }
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    cases = _photo_cases(dirs)
    cases += _mask_cases(dirs)
    cases += _config_cases(dirs["configs"])
    cases += _detector_cases(dirs["detectors"], None)
    cases += _workdir_cases(dirs["workdirs"], None)
    cases += _dataset_cases(dirs, None)
    cases += _faces_cases(dirs)
    cases += artefact_cases(folder, workdir, detector, dataset)
    for case in cases:
        case.expect = {c: e for c, e in case.expect.items() if c in commands}
    return [c for c in cases if c.expect]


def artefact_cases(folder, workdir=None, detector=None, dataset=None) -> list[Case]:
    """The cases made from a trained `workdir`, a `detector` checkpoint and a built `dataset`
    (copies, each broken in one way), for those given; `folder` is build_corpus's."""
    folder = os.path.abspath(folder)
    cases = []
    if detector:
        cases += _detector_cases(os.path.join(folder, "detectors"), detector, derived=True)
    if workdir:
        cases += _workdir_cases(os.path.join(folder, "workdirs"), workdir, derived=True)
    if dataset:
        dirs = {k: os.path.join(folder, k) for k in ("datasets", "photos", "configs")}
        cases += _dataset_cases(dirs, dataset, derived=True)
    return cases


def _photo_cases(dirs) -> list[Case]:
    writers = _photo_writers(list(_faces()[:30]))
    cases = []
    for name, file, write, readable, kept in writers:
        path, lama = os.path.join(dirs["photos"], file), os.path.join(dirs["lama"], file)
        for p in (path, lama):
            write(p)
        if not readable:
            write(os.path.join(dirs["bad_only"], file))
        size = _upright_size(path)
        assert (size is not None) == readable, f"corpus: {name} readable={size is not None}"
        _mask_for(size or (16, 16)).save(os.path.splitext(lama)[0] + "_mask.png")
        user = ACCEPTED if readable else REFUSED
        cases.append(
            Case(
                name=name,
                kind="photo",
                path=path,
                lama=lama,
                size=size,
                expect={
                    "load_photo": ACCEPTED if readable else SKIPPED,
                    "load_rgb": ACCEPTED if kept else SKIPPED,
                    "build_dataset": ACCEPTED if kept else SKIPPED,
                    "cache_masks": ACCEPTED if readable else SKIPPED,
                    "reconstruct": user,
                },
            )
        )
    # Paths that are not plain readable files.
    special = [
        ("dangling_symlink", "dangling.jpg", lambda p: os.symlink("no-such-target.jpg", p)),
        (
            "symlink_loop",
            "loop_a.jpg",
            lambda p: (
                os.symlink("loop_b.jpg", p),
                os.symlink("loop_a.jpg", os.path.join(os.path.dirname(p), "loop_b.jpg")),
            ),
        ),
        ("directory_named_jpg", "folder.jpg", lambda p: os.makedirs(os.path.join(p, "inner"))),
        ("unreadable_chmod_000", "unreadable.jpg", None),
    ]
    face = _faces()[30]
    for name, file, write in special:
        path, lama = os.path.join(dirs["photos"], file), os.path.join(dirs["lama"], file)
        skip = ""
        for p in (path, lama, os.path.join(dirs["bad_only"], file)):
            if write is None:
                Image.fromarray(face).save(p, quality=95)
                os.chmod(p, 0)
                if os.access(p, os.R_OK):  # root reads it anyway: the case cannot be made
                    skip = "running as root: chmod 000 does not stop reading"
            else:
                write(p)
        if name != "directory_named_jpg":  # a folder is no photo: its mask would be one
            _mask_for((160, 160)).save(os.path.splitext(lama)[0] + "_mask.png")
        expect = {
            "load_photo": SKIPPED,
            "load_rgb": SKIPPED,
            "build_dataset": SKIPPED,
            "cache_masks": SKIPPED,
            "reconstruct": REFUSED,
        }
        if name == "directory_named_jpg":  # not a file: folder commands do not list it
            del expect["build_dataset"]
        cases.append(Case(name, "photo", path, expect, lama=lama, skip=skip))
    return cases


def _mask_cases(dirs) -> list[Case]:
    """A good face photo in lama/ with the mask under test beside it (and a copy in masks/)."""
    faces = _faces()[31:45]
    masks = os.path.join(os.path.dirname(dirs["lama"]), "masks")
    os.makedirs(masks, exist_ok=True)
    good = np.asarray(_mask_for((160, 160)))

    def save(im, **kw):
        return lambda p: im.save(p, format="PNG", **kw)

    rgba = np.zeros((160, 160, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = good  # white everywhere, opaque only where to remove
    rotated = Image.fromarray(good).transpose(Image.Transpose.ROTATE_90)
    red = np.zeros((160, 160, 3), np.uint8)
    red[..., 0] = good  # strokes in red on black: read as keep
    specs = [
        # name, writer, accepted[, the mask's name after the photo's stem (default _mask.png)]
        ("mask_ok", save(Image.fromarray(good)), True),
        ("mask_wrong_size", save(Image.fromarray(good).resize((100, 80))), False),
        ("mask_16bit", save(Image.fromarray(good.astype(np.uint16) * 257)), True),
        ("mask_rgb", save(Image.fromarray(good).convert("RGB")), True),
        ("mask_palette", save(Image.fromarray(good).convert("P")), True),
        ("mask_one_bit", save(Image.fromarray(good).convert("1")), True),
        ("mask_rgba_transparent_keep", save(Image.fromarray(rgba)), True),
        ("mask_all_black", save(Image.new("L", (160, 160), 0)), True),
        ("mask_all_white", save(Image.new("L", (160, 160), 255)), False),  # inverted?
        ("mask_exif_rotated", lambda p: rotated.save(p, format="JPEG", exif=_exif(6)), True),
        ("mask_zero_byte", lambda p: open(p, "wb").close(), False),
        ("mask_html", lambda p: pathlib.Path(p).write_text("<html></html>"), False),
        ("mask_truncated", lambda p: (save(Image.fromarray(good))(p), _truncate(p, 0.4)), False),
        # Issue 40: masks are found by stem in any case and format; checked for sense.
        ("mask_named_upper_case", save(Image.fromarray(good)), True, "_MASK.PNG"),
        (
            "mask_as_jpeg",
            lambda p: Image.fromarray(good).save(p, format="JPEG", quality=95),
            True,
            "_mask.jpg",
        ),
        ("mask_a_colour_photo", save(Image.fromarray(faces[0])), False),
        ("mask_inverted", save(Image.fromarray(255 - good)), False),
        ("mask_red_on_black", save(Image.fromarray(red)), False),
    ]
    cases = []
    for i, (name, write, ok, *named) in enumerate(specs):
        photo = os.path.join(dirs["lama"], f"{name}_photo.jpg")
        Image.fromarray(faces[i % len(faces)]).save(photo, quality=95)
        lama_mask = os.path.splitext(photo)[0] + (named[0] if named else "_mask.png")
        own = os.path.join(masks, f"{name}.png")
        write(lama_mask)
        write(own)
        cases.append(
            Case(
                name,
                "mask",
                own,
                {"reconstruct": ACCEPTED if ok else REFUSED},
                lama=lama_mask,
                photo=photo,
                size=(160, 160),
            )
        )
    return cases


def tiny_config_file(path) -> str:
    """A config file (Python) of the tests' tiny inpainter, 1 step: trains in under a minute."""
    tests = os.path.dirname(os.path.abspath(__file__))
    with open(path, "w") as f:
        f.write(
            '"""The tests\' tiny inpainter (tests/inpaint_tiny.py), one step."""\n\n'
            f"import sys\n\nsys.path.insert(0, {tests!r})\n\n"
            "from inpaint_tiny import tiny_config  # noqa: E402\n\n\n"
            "def get_config():\n    c = tiny_config()\n    c.total_steps = 1\n    return c\n"
        )
    return str(path)


def _config_cases(d) -> list[Case]:
    tiny = tiny_config_file(os.path.join(d, "tiny.py"))
    with open(os.path.join(d, "syntax_error.py"), "w") as f:
        f.write("def get_config(:\n")
    with open(os.path.join(d, "no_get_config.py"), "w") as f:
        f.write("CONFIG = 1\n")
    with open(os.path.join(d, "raises.py"), "w") as f:
        f.write("def get_config():\n    raise RuntimeError('oops')\n")
    train = {"train": REFUSED}
    return [
        Case("config_tiny_ok", "config", tiny, {"train": ACCEPTED}, note="control: 1 step"),
        Case("config_missing_file", "config", os.path.join(d, "nosuch.py"), train),
        Case("config_syntax_error", "config", os.path.join(d, "syntax_error.py"), train),
        Case("config_without_get_config", "config", os.path.join(d, "no_get_config.py"), train),
        Case("config_unknown_field", "config", tiny, train, args=("--config.no_such_field=1",)),
        Case("config_wrong_type", "config", tiny, train, args=("--config.total_steps=abc",)),
        Case("config_negative_steps", "config", tiny, train, args=("--config.total_steps=-5",)),
        Case("config_zero_batch", "config", tiny, train, args=("--config.global_batch_size=0",)),
        Case("config_odd_image_size", "config", tiny, train, args=("--config.image_size=30",)),
    ]


def _detector_cases(d, good, derived=False) -> list[Case]:
    refused = {"cache_masks": REFUSED, "reconstruct": REFUSED}
    specs = (
        []
        if derived
        else [
            ("detector_missing", os.path.join(d, "nosuch.pt"), None),
            ("detector_zero_byte", os.path.join(d, "zero.pt"), lambda p: open(p, "wb").close()),
            (
                "detector_random_bytes",
                os.path.join(d, "random.pt"),
                lambda p: _random_file(p, 4096),
            ),
            ("detector_is_a_folder", os.path.join(d, "folder.pt"), os.makedirs),
            ("detector_foreign_torch_file", os.path.join(d, "foreign.pt"), _foreign_torch_file),
        ]
    )
    if good:
        specs += [
            ("detector_truncated", os.path.join(d, "truncated.pt"), _copy_then(good, 0.5)),
            ("detector_garbled", os.path.join(d, "garbled.pt"), _copy_garbled(good)),
        ]
    # Flipped bytes inside the weights' data load as other weights: nothing can tell without a
    # checksum, which torch's files do not check. Refusing is not required there.
    lenient = {"cache_masks": EITHER, "reconstruct": EITHER}
    cases = []
    for name, path, write in specs:
        if write is not None:
            write(path)
        cases.append(Case(name, "detector", path, dict(lenient if "garbled" in name else refused)))
    return cases


def _random_file(path, n: int) -> None:
    with open(path, "wb") as f:
        f.write(np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes())


def _foreign_torch_file(path) -> None:
    import torch

    torch.save({"weights": torch.zeros(3)}, path)


def _copy_then(src, fraction: float):
    def write(p):
        shutil.copyfile(src, p)
        _truncate(p, fraction)

    return write


def _copy_garbled(src):
    def write(p):
        shutil.copyfile(src, p)
        data = bytearray(pathlib.Path(p).read_bytes())
        rng = np.random.default_rng(1)
        for i in rng.integers(len(data) // 4, len(data), 64):
            data[i] ^= 0x5A
        with open(p, "wb") as f:
            f.write(bytes(data))

    return write


def _workdir_cases(d, good, derived=False) -> list[Case]:
    """Copies of a trained workdir with one thing broken in each."""
    refused = {"train": REFUSED, "evaluate": REFUSED, "reconstruct": REFUSED}
    cases = (
        []
        if derived
        else [
            Case(
                "workdir_missing",
                "workdir",
                os.path.join(d, "nosuch"),
                {"evaluate": REFUSED, "reconstruct": REFUSED},  # train starts one there
            )
        ]
    )
    if not good:
        return cases

    def state_files(w):
        root = os.path.join(w, "checkpoints")
        return sorted(
            (os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs),
            key=os.path.getsize,
        )

    def arrays(w):  # every array's data: whatever a reader reads (the generator alone or all)
        return [f for f in state_files(w) if os.path.basename(os.path.dirname(f)) == "d"]

    def arrays_truncated(w):
        for f in arrays(w):
            _truncate(f, 0.3)

    def arrays_garbled(w):
        for f in arrays(w):
            _random_file(f, os.path.getsize(f))

    def manifests_garbled(w):
        for f in state_files(w):
            if os.path.basename(f) == "manifest.ocdbt":
                _random_file(f, os.path.getsize(f))

    def metadata_removed(w):
        for f in state_files(w):
            if os.path.basename(f) in ("_METADATA", "_CHECKPOINT_METADATA"):
                os.remove(f)

    def write_config(text):
        return lambda w: pathlib.Path(w, "config.json").write_text(text)

    def edit_config(change):
        def write(w):
            path = os.path.join(w, "config.json")
            config = json.loads(pathlib.Path(path).read_text())
            change(config)
            with open(path, "w") as f:
                json.dump(config, f)

        return write

    # train resumes from the checkpoint and the given --config: an unreadable config.json may
    # be refused or replaced; one of another model must be refused (it names the fields).
    lenient = {**refused, "train": EITHER}
    specs = [
        ("workdir_ok", None, {"evaluate": ACCEPTED, "reconstruct": ACCEPTED}),
        ("workdir_config_garbled", write_config("{not json"), lenient),
        ("workdir_config_zero_byte", write_config(""), lenient),
        ("workdir_config_a_list", write_config("[1, 2, 3]"), lenient),
        ("workdir_config_missing_fields", edit_config(lambda c: c.pop("gen")), lenient),
        (
            "workdir_config_other_model",
            edit_config(lambda c: c["gen"].update(widths=[8, 16, 16])),
            refused,
        ),
        ("workdir_config_removed", lambda w: os.remove(os.path.join(w, "config.json")), lenient),
        (
            "workdir_no_checkpoint",
            lambda w: shutil.rmtree(os.path.join(w, "checkpoints")),
            {"evaluate": REFUSED, "reconstruct": REFUSED},  # train starts from scratch
        ),
        ("workdir_checkpoint_truncated", arrays_truncated, refused),
        ("workdir_checkpoint_garbled", arrays_garbled, refused),
        ("workdir_checkpoint_manifest_garbled", manifests_garbled, refused),
        # Orbax restores without its metadata files (it reads the arrays' own): either is right.
        ("workdir_checkpoint_metadata_removed", metadata_removed, {k: EITHER for k in refused}),
    ]
    for name, corrupt, expect in specs:
        path = os.path.join(d, name)
        shutil.copytree(good, path, symlinks=True)
        if corrupt is not None:
            corrupt(path)
        cases.append(Case(name, "workdir", path, dict(expect)))
    return cases


def _dataset_cases(dirs, good, derived=False) -> list[Case]:
    d = dirs["datasets"]
    refused = {"evaluate": REFUSED}
    cases = (
        []
        if derived
        else [
            Case("dataset_missing", "dataset", os.path.join(d, "nosuch"), dict(refused)),
            Case("dataset_is_photos", "dataset", dirs["photos"], dict(refused)),
            Case(
                "cache_dataset_missing",
                "dataset",
                os.path.join(d, "nosuch"),
                {"cache_masks": REFUSED},
            ),
            Case("cache_dataset_empty", "dataset", dirs["configs"], {"cache_masks": REFUSED}),
        ]
    )
    if not good:
        return cases
    cases.append(
        Case("dataset_unknown_split", "dataset", good, dict(refused), args=("--split=nosuch",))
    )
    for name, corrupt in [
        ("dataset_info_garbled", lambda f: pathlib.Path(f).write_text("{garbled")),
        ("dataset_info_removed", os.remove),
    ]:
        path = os.path.join(d, name)
        shutil.copytree(good, path, symlinks=True)
        for dp, _, fs in os.walk(path):
            if "dataset_info.json" in fs:
                corrupt(os.path.join(dp, "dataset_info.json"))
        cases.append(Case(name, "dataset", path, {"evaluate": REFUSED, "cache_masks": REFUSED}))
    return cases


def _faces_cases(dirs) -> list[Case]:
    """--faces (and --out) of the dataset build."""
    return [
        Case(
            "faces_mixed_folder",
            "faces",
            dirs["photos"],
            {"build_dataset": ACCEPTED},
            note="good photos kept, the rest skipped with reasons",
        ),
        Case("faces_only_bad_files", "faces", dirs["bad_only"], {"build_dataset": REFUSED}),
        Case(
            "faces_missing",
            "faces",
            os.path.join(dirs["photos"], "nosuch"),
            {"build_dataset": REFUSED},
        ),
        Case(
            "faces_is_a_file",
            "faces",
            os.path.join(dirs["photos"], "ok_jpeg.jpg"),
            {"build_dataset": REFUSED},
        ),
        Case("faces_empty_folder", "faces", dirs["empty"], {"build_dataset": REFUSED}),
        Case(
            "output_is_the_input",
            "output",
            os.path.join(dirs["photos"], "ok_png.png"),
            {"reconstruct": REFUSED},
            note="--input=x.png --output=x.png without --overwrite",
        ),
        Case(
            "output_webp_too_wide",
            "output",
            os.path.join(dirs["lama"], "wide_6000x40.png"),
            {"reconstruct": REFUSED},
            args=("--compare",),
            note="input | result | Telea, 18000 px wide, as WebP (16383 px at most)",
        ),
        Case("folder_empty", "folder", dirs["empty"], {"reconstruct": REFUSED}),
        *(
            Case(
                f"flag_{flag[2:].replace('=', '_')}",
                "flags",
                "",
                {"reconstruct": REFUSED},
                args=(flag,),
            )
            for flag in ("--dilate=-1", "--feather=-1", "--grow=-1", "--score_thresh=1.5")
        ),
        Case(
            "output_unknown_extension",
            "output",
            os.path.join(dirs["lama"], "ok_jpeg.jpg"),
            {"reconstruct": REFUSED},
            note="--output=out.gif: a format reconstruct does not write",
        ),
    ]


def summary(cases: list[Case]) -> str:
    """One line per kind: how many cases."""
    kinds: dict[str, int] = {}
    for c in cases:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    return ", ".join(f"{k}: {n}" for k, n in kinds.items())
