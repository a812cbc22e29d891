"""A user's photo files in, result files out: which files of a folder are photos and which are
their masks, the checks on a mask, and the writing of one result. `launch/reconstruct.py` (a
photo or a folder) and any other caller that works on files use these; NumPy/OpenCV/Pillow only,
like `jaxinpaint.reconstruct`, so that a light serving install can import them.

Every refusal is a `PhotoError`: one sentence naming the file and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

import cv2
import numpy as np
from PIL import Image, JpegImagePlugin

from data_pipeline import atomic
from data_pipeline.images import (
    IMAGE_EXTENSIONS,
    SkipImage,
    list_images,
    load_photo,
    photo_metadata,
)
from jaxinpaint.fills import classical_inpaint
from jaxinpaint.reconstruct import Reconstruction
from jaxinpaint.samples import LOSSLESS, image_format, write_image

# LaMa's convention: photos/a.jpg is reconstructed with the mask photos/a_mask.png beside it;
# here the mask's stem matches case-insensitively, in any format a photo may have.
MASK_SUFFIX = "_mask"


class PhotoError(ValueError):
    """A photo, mask or output that cannot be used, as one sentence for the user."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One photo of a folder: its mask file (None: the detector's), where its result goes, and
    why it cannot be done (None: it can)."""

    photo: str
    mask: str | None
    output: str
    problem: str | None = None


@dataclasses.dataclass(frozen=True)
class Folder:
    """What `plan_folder` found: a job per photo, and the files named as masks that belong to no
    photo (never taken for photos)."""

    jobs: tuple[Job, ...]
    lone_masks: tuple[str, ...]


def check_photo_name(path: str, what: str = "photo") -> None:
    """PhotoError unless `path` ends in an extension of the formats read (`IMAGE_EXTENSIONS`,
    the list folder mode goes by too)."""
    if not path.lower().endswith(IMAGE_EXTENSIONS):
        raise PhotoError(
            f"{what} {path} is not named as an image; expected a file ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}"
        )


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0].lower()


def is_mask_name(path: str) -> bool:
    """Whether `path` is named as a mask (NAME_mask.EXT, any case): never a photo."""
    return _stem(path).endswith(MASK_SUFFIX)


def plan_folder(src_dir: str, dst_dir: str, overwrite: bool = False) -> Folder:
    """A `Job` for each photo under `src_dir` (every file of `IMAGE_EXTENSIONS`, any case, that is
    not named as a mask): the output is `dst_dir`/<its relative path>, in its own format (a.jpg
    stays JPEG, a.png PNG: the two never collide); the mask is the file beside it named
    `<its stem>_mask` in any of those formats and any case (a.JPG and A_Mask.png), and two
    such files are the job's problem. `dst_dir` must not be `src_dir` (the photos would be
    overwritten) unless `overwrite`; photos already inside `dst_dir` (an output folder within
    the input folder) are earlier outputs and are left out. PhotoError when the folder holds no
    photo."""
    inner = os.path.relpath(os.path.realpath(dst_dir), os.path.realpath(src_dir))
    if inner == os.curdir and not overwrite:
        raise PhotoError(
            f"--output {dst_dir} is the --input folder: its photos would be overwritten; "
            "expected another folder, or --overwrite"
        )
    outside = inner == os.pardir or inner.startswith(os.pardir + os.sep)
    files = [
        f
        for f in list_images(src_dir)
        if outside or not os.path.relpath(f, src_dir).startswith(inner + os.sep)
    ]
    masks: dict[tuple[str, str], list[str]] = {}
    for f in files:
        if is_mask_name(f):
            masks.setdefault((os.path.dirname(f), _stem(f)), []).append(f)
    jobs, used = [], set()
    for f in files:
        if is_mask_name(f):
            continue
        mine = masks.get((os.path.dirname(f), _stem(f) + MASK_SUFFIX), [])
        used.update(mine)
        problem = None
        if len(mine) > 1:
            names = ", ".join(os.path.basename(m) for m in mine)
            problem = f"{len(mine)} masks beside it ({names}); expected one"
        out = os.path.join(dst_dir, os.path.relpath(f, src_dir))
        jobs.append(Job(f, mine[0] if len(mine) == 1 else None, out, problem))
    lone = tuple(f for f in files if is_mask_name(f) and f not in used)
    if not jobs:
        masks_only = f" (only {len(lone)} file(s) named as masks)" if lone else ""
        raise PhotoError(
            f"no photo in {src_dir}{masks_only}; expected files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)} (any case)"
        )
    return Folder(tuple(jobs), lone)


# Sanity checks on a mask: a photo saved as a mask, a mask drawn in colour, an inverted mask.
COLOUR_SPREAD = 48  # levels between a pixel's channels that make it coloured (JPEG noise: fewer)
MAX_COLOURED = 0.01  # fraction of its non-black pixels a black-and-white mask may have coloured
MAX_MARKED = 0.75  # a mask marking more of the photo is taken for an inverted one


def mask_from_rgb(rgb: np.ndarray, name: str = "the mask") -> np.ndarray:
    """The HxW bool mask (True = remove) of a mask image's RGB pixels (as `load_photo` reads
    them over black, so that transparent pixels keep): bright (> 127 of 255 in Pillow's L) is
    remove. PhotoError, naming it, for an image in colour (a photo saved as a mask, or strokes
    in red, which read as keep) and for one that marks more than MAX_MARKED of the photo (an
    inverted mask). An empty mask is no error: the photo is written unchanged."""
    rgb = np.asarray(rgb)
    brightest = rgb.max(axis=-1)
    spread = brightest.astype(np.int16) - rgb.min(axis=-1)
    # Of the pixels that are not black: red strokes on black are all of those, and few pixels.
    coloured = np.count_nonzero(spread > COLOUR_SPREAD) / max(
        np.count_nonzero(brightest > COLOUR_SPREAD), 1
    )
    if coloured > MAX_COLOURED:
        raise PhotoError(
            f"{name} is in colour ({coloured:.0%} of its pixels that are not black); expected "
            "black (keep) and white (remove), e.g. a grayscale PNG"
        )
    mask = np.asarray(Image.fromarray(rgb).convert("L")) > 127  # as Pillow's L, then halfway
    if mask.mean() > MAX_MARKED:
        raise PhotoError(
            f"{name} marks {mask.mean():.0%} of the photo for removal; expected white only over "
            "what covers the faces (is it inverted? white = remove)"
        )
    return mask


def read_mask(path: str) -> np.ndarray:
    """The mask file at `path` as an HxW bool array, True = remove (`mask_from_rgb`);
    PhotoError if it is unreadable or refused."""
    try:
        # Over black, transparent pixels read as keep: a mask painted on a transparent layer.
        rgb = load_photo(path, background=(0, 0, 0))
    except SkipImage as e:
        detail = f": {e.detail}" if e.detail else ""
        raise PhotoError(f"mask {path} is not a readable image ({e.reason}{detail})") from None
    return mask_from_rgb(rgb, f"mask {path}")


def load_references(path: str) -> list:
    """The reference photos at `path` (`data_pipeline.guide.reference`): the photo, or every
    photo in the folder with a face the mesh is sure of (the others are named on stderr);
    PhotoError when none is usable."""
    from data_pipeline import guide

    if not os.path.exists(path):
        raise PhotoError(f"--reference {path} does not exist")
    paths = list_images(path) if os.path.isdir(path) else [path]
    references, unusable = [], []
    for p in paths:
        try:
            references.append(guide.reference(load_photo(p), p))
        except (SkipImage, ValueError) as e:  # unreadable, or no face the mesh is sure of
            unusable.append(str(e))
    if not references:
        reasons = "; ".join(unusable) or "the folder holds no photo"
        raise PhotoError(f"--reference {path}: no usable reference ({reasons})")
    for reason in unusable:
        print(f"warning: {reason}; not used", file=sys.stderr)
    return references


def check_output(src: str, dst: str, overwrite: bool = False) -> None:
    """PhotoError unless `dst` names a format results are written in and, unless `overwrite`,
    is another file than the photo `src`."""
    try:
        image_format(dst)
    except ValueError as e:
        raise PhotoError(str(e)) from None
    if not overwrite and os.path.exists(dst) and os.path.samefile(src, dst):
        raise PhotoError(
            f"--output {dst} is the --input photo: it would be overwritten; expected another "
            "file, or --overwrite"
        )


# A JPEG result of a photo that was no JPEG: the highest quality, no chroma subsampling (4:4:4).
HIGHEST_JPEG = {"quality": 100, "subsampling": 0}


def _source(path: str) -> tuple[str | None, dict]:
    """Pillow's format of the file at `path` (by its content) and the options that write a JPEG
    as it was encoded: its quantization tables (its quality) and chroma subsampling, and
    progressive if it was (Pillow's `quality="keep"`, which works only on the Image object the
    JPEG was opened as); (None, {}) when it cannot be read."""
    try:
        with Image.open(path) as im:
            if im.format != "JPEG":
                return im.format, {}
            if im.mode not in ("RGB", "L"):  # CMYK: its tables are not those of a YCbCr JPEG
                return "JPEG", dict(HIGHEST_JPEG)
            sampling = JpegImagePlugin.get_sampling(im)  # -1: gray or CMYK, one table
            options = {"qtables": im.quantization, "subsampling": max(sampling, 0)}
            if im.info.get("progressive"):
                options["progressive"] = True
            return "JPEG", options
    except (OSError, ValueError, SyntaxError):
        return None, {}


def write_result(src: str, dst: str, image: np.ndarray, *, unchanged: bool) -> str:
    """Writes `image`, the result for the photo file `src`, to `dst` (through a temporary file):
    when it is the photo `unchanged` and `dst` has the photo's format, a byte-for-byte copy
    (nothing re-encoded, the metadata as it was); otherwise encoded with the photo's metadata
    (`photo_metadata`) in `dst`'s format: losslessly (PNG, BMP, TIFF, WebP: every pixel outside
    the hole and its seam stays), or as a JPEG with the photo's own quantization tables and
    chroma subsampling when it was a JPEG (its quality, where re-encoding changes pixels least)
    and `HIGHEST_JPEG` otherwise. Returns a note for the user ("" if none): metadata left out,
    or that a lossless photo's JPEG changes pixels a .png keeps. PhotoError when the format
    cannot hold the image, OSError when `dst` cannot be written."""
    fmt = image_format(dst)
    src_format, options = _source(src)
    if unchanged and src_format == fmt:
        if not (os.path.exists(dst) and os.path.samefile(src, dst)):
            with open(src, "rb") as f, atomic.open_atomic(dst, "wb") as out:
                shutil.copyfileobj(f, out)
        return ""
    notes = []
    if fmt == "JPEG" and src_format != "JPEG":
        options = HIGHEST_JPEG
        if src_format in LOSSLESS:
            notes.append("JPEG changes pixels outside the hole; a .png output keeps them")
    try:
        notes.append(write_image(dst, image, photo_metadata(src), **options))
    except ValueError as e:  # the format cannot hold it (WebP's 16383 px a side)
        raise PhotoError(str(e)) from None
    return "; ".join(n for n in notes if n)


def reconstruct_file(
    reconstructor,
    src: str,
    dst: str,
    mask: str | None = None,
    *,
    panels: str = "result",
    details: str | None = None,
) -> tuple[str, str, Reconstruction]:
    """Reconstructs the photo file `src` (with the mask file `mask`, or the reconstructor's mask
    source) and writes `dst`: the result alone (`panels` "result"), input | result
    ("side_by_side") or input | result | OpenCV's Telea on the same pixels ("compare"); with
    `details` (the mask's source as the record names it), also `dst`.details/
    (`jaxinpaint.records.write_details`). Returns ("done" or "skipped", a one-line message, the
    reconstruction); "skipped" means written unchanged (no face, or no occluder).

    Metadata the output's format cannot hold is left out, and the message says so. Raises
    SkipImage for an unreadable photo, PhotoError for an unreadable mask or one of another size,
    or none at all, or a result the output's format cannot hold, OSError when `dst` cannot be
    written.
    """
    photo_mask = None if mask is None else read_mask(mask)
    photo = load_photo(src)
    if photo_mask is not None and photo_mask.shape != photo.shape[:2]:
        (mh, mw), (ph, pw) = photo_mask.shape, photo.shape[:2]
        raise PhotoError(
            f"mask {mask} is {mw}x{mh} px but the photo {src} is {pw}x{ph} px; expected a mask "
            "of the photo's size"
        )
    if photo_mask is None and reconstructor.mask_source is None:
        stem = os.path.splitext(os.path.basename(src))[0]
        raise PhotoError(
            f"no mask beside it ({stem}{MASK_SUFFIX}.png or another format) and no --detector"
        )
    result = reconstructor(photo, photo_mask)
    images = [result.image] if panels == "result" else [photo, result.image]
    if panels == "compare":  # OpenCV's Telea on the pixels we replaced, at the photo's resolution
        images.append(classical_inpaint(photo, result.hole, "telea"))
    image = np.concatenate(images, axis=1)
    note = write_result(src, dst, image, unchanged=np.array_equal(image, photo))
    note = f" ({note})" if note else ""
    if details is not None:
        from jaxinpaint.records import photo_record, write_details

        record = photo_record(result, mask=details, input=src, output=dst)
        write_details(dst + ".details", photo, result, record)
    if photo_mask is not None and not photo_mask.any():
        message = f"{src}: the mask {mask} marks nothing (no pixel brighter than 127 of 255)"
        return "skipped", f"{message}; written unchanged to {dst}{note}", result
    if not result.changed:
        if not result.faces:
            return "skipped", f"{src}: no face found; written unchanged to {dst}{note}", result
        return (
            "skipped",
            f"{src}: no occluder found on {len(result.faces)} face(s); written unchanged to "
            f"{dst}{note}",
            result,
        )
    if not result.faces:  # the user's mask, filled by the smooth base alone
        message = f"{src}: no face found; the mask's {result.base_pixels} px filled smoothly"
        return "done", f"{message} -> {dst}{note}", result
    done = sum(f.inpainted for f in result.faces)
    smooth = ""
    if result.base_pixels:  # the hole reaches past the faces' windows
        smooth = f"; {result.base_pixels} px outside the faces' windows filled smoothly"
    message = f"{src}: reconstructed {done} of {len(result.faces)} face(s){smooth} -> {dst}{note}"
    return "done", message, result


@dataclasses.dataclass
class FolderRun:
    """What a folder run did: one message per photo done, skipped (written unchanged) or failed,
    and the files named as masks that no photo used."""

    done: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    lone_masks: tuple[str, ...] = ()

    def summary(self, src_dir: str, dst_dir: str, with_masks: int) -> str:
        """The closing lines: the counts, then each skipped and failed photo (one line each) and
        each mask no photo used."""
        total = len(self.done) + len(self.skipped) + len(self.failed)
        masks = f" ({with_masks} with their own mask)" if with_masks else ""
        lines = [
            f"{total} photos in {src_dir}{masks}: {len(self.done)} done, {len(self.skipped)} "
            f"skipped (written unchanged), {len(self.failed)} failed; outputs in {dst_dir}"
        ]
        lines += [f"  skipped {m}" for m in self.skipped]
        lines += [f"  failed {m}" for m in self.failed]
        lines += [
            f"  not used {m}: named as a mask, but no photo of its name (without {MASK_SUFFIX}) "
            "is beside it"
            for m in self.lone_masks
        ]
        return "\n".join(lines)


def reconstruct_folder(
    reconstructor,
    folder: Folder,
    *,
    panels: str = "result",
    details: str | None = None,
    progress=iter,
    log=print,
) -> FolderRun:
    """`reconstruct_file` on every job of `folder`, going on past any photo that fails (the
    failure is its message); `details` is the mask source the records name for photos without a
    mask of their own (None: no details). `progress` wraps the jobs (a progress bar), `log`
    gets each photo's message as it is done."""
    run = FolderRun(lone_masks=folder.lone_masks)
    for job in progress(folder.jobs):
        src, dst = job.photo, job.output
        try:
            if job.problem:
                raise PhotoError(job.problem)
            source = None if details is None else job.mask or details
            outcome, message, _ = reconstruct_file(
                reconstructor, src, dst, job.mask, panels=panels, details=source
            )
        except SkipImage as e:
            run.failed.append(str(e))
        except PhotoError as e:  # its mask is unreadable, of another size or refused; or none
            run.failed.append(f"{src}: {e}")
        except OSError as e:  # dst not writable, disk full, a folder in its place
            run.failed.append(f"{src}: not written to {dst} ({e})")
        # The detector, the face finders and the inpainter on one odd photo (CUDA out of memory,
        # a shape they do not take) must not cost the rest of the batch; they raise these.
        except (ValueError, RuntimeError, MemoryError, cv2.error) as e:
            run.failed.append(f"{src}: {type(e).__name__}: {e}")
        else:
            (run.done if outcome == "done" else run.skipped).append(message)
            log(message)
            continue
        log(f"failed {run.failed[-1]}")
    return run
