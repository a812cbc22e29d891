r"""Remove what covers the faces in photos and reconstruct the faces underneath.

    python launch/reconstruct.py --input=photo.jpg --output=out.jpg \
        --detector=runs/demo/detector/model_final.pt --inpainter=runs/demo/inpainter \
        [--remove=sunglasses,mask] [--details] [--compare]
    python launch/reconstruct.py --input=photo.jpg --mask=mask.png --output=out.png \
        --inpainter=...                  # your own mask instead of the detector's
    python launch/reconstruct.py --input=photos/ --output=out/ --inpainter=... [--detector=...]

Faces are found with keypoints (BlazeFace, then YuNet, Haar as the fallback) and aligned as the
inpainter's training faces were (`--align`, default: as in its config); the detector's masks of the
chosen classes (default: all 19) above its score threshold, or the pixels of `--mask` (white =
remove), are inpainted by the generator at its resolution, and the fill is warped back into the
photo at full resolution (as a correction of a smooth fill made there), replacing the hole whole
with a feathered seam outside it. Outputs are written whole or not at all (PNG, JPEG at quality 95,
WebP or BMP, by the output's extension), keeping the photo's EXIF (orientation set upright) and ICC
profile where the format allows.

Outputs next to OUTPUT (`--details`): OUTPUT.details/ holds mask.png (the pixels replaced),
overlay.png (face boxes; each detection's outline, class and score; or the user mask's outline),
faces/<i>_before.png and <i>_after.png, and record.json (faces, boxes, detections with scores,
hole fractions, seconds per stage). `--compare` makes OUTPUT itself input | result | OpenCV's
Telea on the same pixels; `--side_by_side` input | result.

Folder mode: each photo under its own name and in its own format (photos/x/a.jpg ->
out/x/a.jpg). A photo with a mask beside it (LaMa's convention: photos/x/a.jpg and
photos/x/a_mask.png) is reconstructed with that mask; the others with the detector (without
--detector, they fail). It goes on past a photo that fails (unreadable, not written, detector or
inpainter error), shows a progress bar, and ends with a summary: done (reconstructed), skipped
(no face or no occluder: written unchanged) and failed, each with its reason.

Photos and masks may be grayscale, palette, CMYK, 16-bit or with alpha (converted by
`data_pipeline.images.load_photo`; transparent photo pixels read as white, transparent mask
pixels as black, i.e. keep); EXIF orientation is applied to both.

Exit status: 0 done (a photo without a face or without an occluder is written unchanged, with a
message); 1 bad arguments, missing or corrupt checkpoint, unreadable or wrong-size mask; 2 an
input is not a readable photo (folder mode: any photo failed).
"""

import os
import sys

import numpy as np
from absl import flags, logging
from PIL import Image

import launch

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "A photo, or a folder of photos (searched recursively).")
flags.DEFINE_string(
    "output",
    None,
    "Output file (for a photo) or folder (for a folder: each photo under its own name and in its "
    "own format, photos/x/a.jpg -> OUTPUT/x/a.jpg; not the input folder).",
)
flags.DEFINE_string("inpainter", None, "Training workdir of the inpainter (launch/train.py).")
flags.DEFINE_string("detector", None, "Detector checkpoint (launch/train_detector.py).")
flags.DEFINE_string(
    "mask",
    None,
    "Instead of the detector: a mask image the photo's size, bright (> 127 of 255) = remove; "
    "any mode (gray, RGB, palette, 16-bit; transparent pixels = keep).",
)
flags.DEFINE_list("remove", [], "Occluder classes to remove (default: all 19).")
flags.DEFINE_float("score_thresh", None, "Detector score threshold (default: the checkpoint's).")
flags.DEFINE_enum(
    "score",
    None,
    ["occluder", "class"],
    "What --score_thresh applies to with --detector: p(any occluder) or p(the detection's "
    "class) (default: the checkpoint's config, occluder; an export keeps the one it was made "
    "with).",
)
flags.DEFINE_integer(
    "grow",
    None,
    "Pixels of the detector's input size its hole grows by before it is taken to the photo, to "
    "cover an occluder's edge with a margin that follows the face's size (default: 2).",
)
flags.DEFINE_float(
    "on_face",
    None,
    "A detection counts only when at least this fraction of its mask lies on the face (the "
    "aligned template's face outline); detections off the face (a collar, something in the "
    "background) leave the hole. 0 keeps every detection (default: 0.3).",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_integer(
    "dilate",
    0,
    "Photo pixels the hole grows by (after --grow): a --mask is taken as exact unless this is set.",
)
flags.DEFINE_integer("feather", 3, "Width in photo pixels of the blended seam.")
flags.DEFINE_bool(
    "align", None, "Align faces by keypoints (default: as the inpainter trained, data.align)."
)
flags.DEFINE_bool("side_by_side", False, "Write the input and the result side by side.")
flags.DEFINE_bool(
    "details",
    False,
    "Also write OUTPUT.details/: mask.png (the pixels replaced), overlay.png (faces and "
    "detections drawn on the photo), faces/<i>_before.png and <i>_after.png (each face's "
    "square), record.json (faces, boxes, detections, hole fractions, seconds).",
)
flags.DEFINE_bool(
    "compare", False, "Write input | result | cv2.inpaint TELEA of the same pixels side by side."
)
flags.DEFINE_string("device", None, "Detector device, e.g. cpu or cuda:0 (default: cuda if any).")
flags.DEFINE_string(
    "exported",
    None,
    "Instead of --inpainter and --detector: a folder written by launch/export.py, run with "
    "onnxruntime (neither JAX nor PyTorch is imported).",
)
flags.mark_flags_as_required(["input", "output"])

UserError = launch.UserError


def load_models():
    """`(inpaint, detector or None, size, align)` of the flags: the inpainter's workdir and the
    detector's checkpoint, or an export folder. A detector has `detect` (the mask source) and
    `input_size`."""
    if bool(FLAGS.inpainter) == bool(FLAGS.exported):
        raise UserError("give --inpainter=WORKDIR or --exported=FOLDER (one of the two)")
    from data_pipeline.categories import CATEGORIES

    unknown = sorted(set(FLAGS.remove) - set(CATEGORIES))
    if unknown:
        raise UserError(f"--remove: unknown classes {unknown}; choose from {list(CATEGORIES)}")
    classes = tuple(FLAGS.remove) or None
    if FLAGS.exported:
        import serve

        if FLAGS.detector or FLAGS.score:
            raise UserError(
                "--detector and --score go with --inpainter; an export folder holds its own "
                "detector (launch/export.py --detector)"
            )
        try:
            models = serve.load(FLAGS.exported, score_thresh=FLAGS.score_thresh, classes=classes)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(f"--exported {FLAGS.exported}: {e}") from None
        return models.inpainter, models.detector, models.size, models.align

    from jaxinpaint.inference import Inpainter

    try:
        inpainter = Inpainter.from_workdir(FLAGS.inpainter)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    detector = None
    if FLAGS.detector:
        from detector.predict import Detector, default_device

        try:
            detector = Detector.from_checkpoint(
                FLAGS.detector,
                score_thresh=FLAGS.score_thresh,
                classes=classes,
                score=FLAGS.score,
                device=FLAGS.device or default_device(),
            )
        except (FileNotFoundError, ValueError, RuntimeError) as e:
            raise UserError(f"detector checkpoint {FLAGS.detector}: {e}") from None
    return inpainter, detector, inpainter.size, inpainter.config.data.get("align", True)


def build_reconstructor(jobs: list | None):
    """The Reconstructor of the flags, for one photo (`jobs` None) or a folder's `jobs`, which
    may go without a detector when each photo has its mask beside it."""
    from jaxinpaint.reconstruct import DETECTOR_GROW, ON_FACE, Reconstructor

    if FLAGS.mask and jobs is not None:
        raise UserError(
            "--mask belongs to a single photo; in a folder, put each photo's mask beside it "
            "(a.jpg and a_mask.png) or use --detector"
        )

    def check_masks(has_detector: bool) -> None:
        if has_detector:
            return
        if jobs is None and not FLAGS.mask:
            raise UserError("give --detector=CHECKPOINT or --mask=FILE")
        if jobs is not None and all(m is None for _, m, _ in jobs):
            raise UserError(
                f"no photo in {FLAGS.input} has a mask beside it (a.jpg and a{MASK_SUFFIX}); "
                "give --detector=CHECKPOINT"
            )

    if not FLAGS.exported:
        check_masks(bool(FLAGS.detector))  # before the models load
    inpaint, detector, size, align = load_models()
    check_masks(detector is not None)
    return Reconstructor(
        inpaint,
        None if detector is None else detector.detect,  # its masks, and what it found
        size=size,
        mask_size=None if detector is None else detector.input_size,  # the face at its size
        grow=DETECTOR_GROW if FLAGS.grow is None else FLAGS.grow,  # the detector's holes only
        on_face=ON_FACE if FLAGS.on_face is None else FLAGS.on_face,
        dilate=FLAGS.dilate,
        feather=FLAGS.feather,
        align=align if FLAGS.align is None else FLAGS.align,
    )


def read_mask(path: str) -> np.ndarray:
    """The mask file at `path` as an HxW bool array, True = remove; raises UserError if it is
    unreadable."""
    from data_pipeline.images import SkipImage, load_photo

    try:
        # Over black, transparent pixels read as keep: a mask painted on a transparent layer.
        rgb = load_photo(path, background=(0, 0, 0))
    except SkipImage as e:
        detail = f": {e.detail}" if e.detail else ""
        raise UserError(f"mask {path} is not a readable image ({e.reason}{detail})") from None
    return np.asarray(Image.fromarray(rgb).convert("L")) > 127  # as Pillow's L, then halfway


def reconstruct_one(reconstructor, src: str, dst: str, mask: str | None = None) -> tuple[str, str]:
    """Writes the result for one photo (with the mask file `mask`, or the detector's masks);
    returns ("done" or "skipped", a one-line message).

    "skipped" means written unchanged (no face, or no occluder). Raises SkipImage for an
    unreadable photo, UserError for an unreadable mask or one of another size, OSError when
    `dst` cannot be written.
    """
    from data_pipeline.images import load_photo, photo_metadata
    from jaxinpaint.fills import classical_inpaint
    from jaxinpaint.samples import write_image

    photo_mask = None if mask is None else read_mask(mask)
    photo = load_photo(src)
    if photo_mask is not None and photo_mask.shape != photo.shape[:2]:
        (mh, mw), (ph, pw) = photo_mask.shape, photo.shape[:2]
        raise UserError(
            f"mask {mask} is {mw}x{mh} px but the photo {src} is {pw}x{ph} px; expected a mask "
            "of the photo's size"
        )
    if photo_mask is None and reconstructor.mask_source is None:
        raise UserError(f"no mask beside it ({mask_path(src)}) and no --detector")
    result = reconstructor(photo, photo_mask)
    panels = [photo, result.image] if FLAGS.side_by_side or FLAGS.compare else [result.image]
    if FLAGS.compare:  # OpenCV's Telea on the pixels we replaced, at the photo's resolution
        panels.append(classical_inpaint(photo, result.hole, "telea"))
    write_image(dst, np.concatenate(panels, axis=1), photo_metadata(src))
    if FLAGS.details:
        from jaxinpaint.records import photo_record, write_details

        source = (
            mask or f"detector {FLAGS.detector or os.path.join(FLAGS.exported, 'detector.onnx')}"
        )
        record = photo_record(result, mask=source, input=src, output=dst)
        write_details(dst + ".details", photo, result, record)
    if not result.changed:
        if not result.faces:
            return "skipped", f"{src}: no face found; written unchanged to {dst}"
        return "skipped", (
            f"{src}: no occluder found on {len(result.faces)} face(s); written unchanged to {dst}"
        )
    if not result.faces:  # the user's mask, filled by the smooth base alone
        return "done", (
            f"{src}: no face found; the mask's {result.base_pixels} px filled smoothly -> {dst}"
        )
    done = sum(f.inpainted for f in result.faces)
    smooth = ""
    if result.base_pixels:  # the hole reaches past the faces' windows
        smooth = f"; {result.base_pixels} px outside the faces' windows filled smoothly"
    return "done", f"{src}: reconstructed {done} of {len(result.faces)} face(s){smooth} -> {dst}"


MASK_SUFFIX = "_mask.png"  # LaMa's convention: photos/a.jpg is reconstructed with photos/a_mask.png


def mask_path(photo: str) -> str:
    """Where folder mode looks for a photo's own mask."""
    return os.path.splitext(photo)[0] + MASK_SUFFIX


def folder_outputs(src_dir: str, dst_dir: str) -> list[tuple[str, str | None, str]]:
    """(photo, its mask or None, output) for each photo under `src_dir`: the output is
    `dst_dir`/<its relative path>, in its own format (a.jpg stays JPEG, a.png PNG: the two never
    collide); the mask is `a_mask.png` beside `a.jpg` when there is one (a mask file is not a
    photo). `dst_dir` must not be `src_dir` (the photos would be overwritten); photos already
    inside `dst_dir` (an output folder within the input folder) are earlier outputs and are
    left out."""
    from data_pipeline.images import list_images

    inner = os.path.relpath(os.path.realpath(dst_dir), os.path.realpath(src_dir))
    if inner == os.curdir:
        raise UserError(
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
        (
            f,
            mask_path(f) if mask_path(f) in masks else None,
            os.path.join(dst_dir, os.path.relpath(f, src_dir)),
        )
        for f in files
        if f not in masks
    ]


def reconstruct_folder(reconstructor, jobs: list[tuple[str, str | None, str]], src_dir, dst_dir):
    """Reconstructs every (photo, mask, output) of `folder_outputs`, going on past failures;
    prints a summary and returns the exit status: 0, or 2 when any photo failed."""
    from tqdm import tqdm

    from data_pipeline.images import SkipImage

    done, skipped, failed = [], [], []
    for src, mask, dst in tqdm(jobs, desc="reconstruct", unit="photo"):
        try:
            outcome, message = reconstruct_one(reconstructor, src, dst, mask)
        except SkipImage as e:
            failed.append(str(e))
        except UserError as e:  # its mask is unreadable or of another size, or it has none
            failed.append(f"{src}: {e}")
        except OSError as e:  # dst not writable, disk full, a folder in its place
            failed.append(f"{src}: not written to {dst} ({e})")
        # The detector and the inpainter on one odd photo (CUDA out of memory, a shape they do
        # not take) must not cost the rest of the batch; they raise these.
        except (ValueError, RuntimeError, MemoryError) as e:
            failed.append(f"{src}: {type(e).__name__}: {e}")
        else:
            (done if outcome == "done" else skipped).append(message)
            tqdm.write(message)
            continue
        tqdm.write(f"failed {failed[-1]}")
    with_masks = sum(mask is not None for _, mask, _ in jobs)
    masks = f" ({with_masks} with their own mask)" if with_masks else ""
    print(
        f"{len(jobs)} photos in {src_dir}{masks}: {len(done)} done, {len(skipped)} skipped "
        f"(written unchanged), {len(failed)} failed; outputs in {dst_dir}"
    )
    for message in skipped:
        print(f"  skipped {message}")
    for message in failed:
        print(f"  failed {message}")
    return 2 if failed else 0


def main(argv):
    from jaxinpaint.gpu_memory import share_gpu_memory

    share_gpu_memory()  # the detector (torch) and the inpainter (JAX) may share one GPU
    logging.set_verbosity(logging.WARNING)  # Orbax and tfds log every restore and read at INFO
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 1
    from data_pipeline.images import SkipImage

    try:
        if not os.path.exists(FLAGS.input):
            raise UserError(f"--input {FLAGS.input} does not exist")
        single = not os.path.isdir(FLAGS.input)
        if single:
            from jaxinpaint.samples import image_format

            try:
                image_format(FLAGS.output)
            except ValueError as e:
                raise UserError(str(e)) from None
        jobs = None if single else folder_outputs(FLAGS.input, FLAGS.output)
        reconstructor = build_reconstructor(jobs)
        if not single:
            return reconstruct_folder(reconstructor, jobs, FLAGS.input, FLAGS.output)
        try:
            print(reconstruct_one(reconstructor, FLAGS.input, FLAGS.output, FLAGS.mask)[1])
        except OSError as e:
            raise UserError(f"--output {FLAGS.output} could not be written ({e})") from None
        return 0
    except SkipImage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def cli():
    """The `jaxinpaint-reconstruct` command."""
    launch.run(main, __doc__)


if __name__ == "__main__":
    cli()
