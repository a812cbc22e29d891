"""A user's photo files in, result files out: which files of a folder are photos and which are
their masks, the checks on a mask, and the writing of one result. `launch/reconstruct.py` (a
photo or a folder) and any other caller that works on files use these; NumPy/OpenCV/Pillow only,
like `jaxinpaint.reconstruct`, so that a light serving install can import them.

Every refusal is a `PhotoError`: one sentence naming the file and what was expected.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from PIL import Image

from data_pipeline.images import SkipImage, list_images, load_photo, photo_metadata
from jaxinpaint.fills import classical_inpaint
from jaxinpaint.reconstruct import Reconstruction
from jaxinpaint.samples import image_format, write_image

MASK_SUFFIX = "_mask.png"  # LaMa's convention: photos/a.jpg is reconstructed with photos/a_mask.png


class PhotoError(ValueError):
    """A photo, mask or output that cannot be used, as one sentence for the user."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One photo of a folder: its mask file (None: the detector's) and where its result goes."""

    photo: str
    mask: str | None
    output: str


def mask_path(photo: str) -> str:
    """Where folder mode looks for a photo's own mask."""
    return os.path.splitext(photo)[0] + MASK_SUFFIX


def folder_jobs(src_dir: str, dst_dir: str) -> list[Job]:
    """A `Job` for each photo under `src_dir`: the output is `dst_dir`/<its relative path>, in its
    own format (a.jpg stays JPEG, a.png PNG: the two never collide); the mask is `a_mask.png`
    beside `a.jpg` when there is one (a mask file is not a photo). `dst_dir` must not be
    `src_dir` (the photos would be overwritten); photos already inside `dst_dir` (an output
    folder within the input folder) are earlier outputs and are left out."""
    inner = os.path.relpath(os.path.realpath(dst_dir), os.path.realpath(src_dir))
    if inner == os.curdir:
        raise PhotoError(
            f"--output {dst_dir} is the --input folder: its photos would be overwritten; "
            "expected another folder"
        )
    outside = inner == os.pardir or inner.startswith(os.pardir + os.sep)
    files = [
        f
        for f in list_images(src_dir)
        if outside or not os.path.relpath(f, src_dir).startswith(inner + os.sep)
    ]
    masks = {mask_path(f) for f in files} & set(files)
    return [
        Job(
            f,
            mask_path(f) if mask_path(f) in masks else None,
            os.path.join(dst_dir, os.path.relpath(f, src_dir)),
        )
        for f in files
        if f not in masks
    ]


def read_mask(path: str) -> np.ndarray:
    """The mask file at `path` as an HxW bool array, True = remove; PhotoError if it is
    unreadable."""
    try:
        # Over black, transparent pixels read as keep: a mask painted on a transparent layer.
        rgb = load_photo(path, background=(0, 0, 0))
    except SkipImage as e:
        detail = f": {e.detail}" if e.detail else ""
        raise PhotoError(f"mask {path} is not a readable image ({e.reason}{detail})") from None
    return np.asarray(Image.fromarray(rgb).convert("L")) > 127  # as Pillow's L, then halfway


def check_output(path: str) -> None:
    """PhotoError unless `path` names a format results are written in."""
    try:
        image_format(path)
    except ValueError as e:
        raise PhotoError(str(e)) from None


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
        raise PhotoError(f"no mask beside it ({mask_path(src)}) and no --detector")
    result = reconstructor(photo, photo_mask)
    images = [result.image] if panels == "result" else [photo, result.image]
    if panels == "compare":  # OpenCV's Telea on the pixels we replaced, at the photo's resolution
        images.append(classical_inpaint(photo, result.hole, "telea"))
    try:
        note = write_image(dst, np.concatenate(images, axis=1), photo_metadata(src))
    except ValueError as e:  # the format cannot hold it (WebP's 16383 px a side)
        raise PhotoError(str(e)) from None
    note = f" ({note})" if note else ""
    if details is not None:
        from jaxinpaint.records import photo_record, write_details

        record = photo_record(result, mask=details, input=src, output=dst)
        write_details(dst + ".details", photo, result, record)
    if not result.faces:
        return "skipped", f"{src}: no face found; written unchanged to {dst}{note}", result
    if not result.changed:
        return (
            "skipped",
            f"{src}: no occluder found on {len(result.faces)} face(s); written unchanged to "
            f"{dst}{note}",
            result,
        )
    done = sum(f.inpainted for f in result.faces)
    message = f"{src}: reconstructed {done} of {len(result.faces)} face(s) -> {dst}{note}"
    return "done", message, result
