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
with a feathered seam outside it. Outputs are written whole or not at all, in the format of the
output's extension (PNG, JPEG, WebP, BMP, TIFF), keeping the photo's EXIF (orientation set
upright) and ICC profile where the format allows (metadata a format cannot hold is left out, with
a word). The pixel contract (nothing farther than --dilate + --feather from the mask changes)
holds for the lossless outputs, PNG, BMP, TIFF and WebP (written lossless); a JPEG output is
re-encoded, with the photo's own quantization tables and chroma subsampling when it was a JPEG
(else quality 100, 4:4:4), so JPEG's rounding changes pixels everywhere by a few levels: write
PNG to keep them. A photo written unchanged (no face, no occluder, an empty mask) in its own
format is copied byte for byte.

Outputs next to OUTPUT (`--details`): OUTPUT.details/ holds mask.png (the pixels replaced),
overlay.png (face boxes; each detection's outline, class and score; or the user mask's outline),
faces/<i>_before.png and <i>_after.png, and record.json (faces, boxes, detections with scores,
hole fractions, seconds per stage). `--compare` makes OUTPUT itself input | result | OpenCV's
Telea on the same pixels; `--side_by_side` input | result.

Folder mode: each photo under its own name and in its own format (photos/x/a.jpg ->
out/x/a.jpg); photos are the files ending in .jpg, .jpeg, .png, .webp, .bmp, .tif or .tiff (any
case; the same list a single --input must match), and a folder without any is an error. A photo
with a mask beside it (LaMa's convention: photos/x/a.jpg and photos/x/a_mask.png; the mask's
stem in any case, in any of those formats) is reconstructed with that mask; the others with the
detector (without --detector, they fail). A file named as a mask is never a photo. It goes on
past a photo that fails (unreadable, its mask refused, not written, detector or inpainter
error), shows a progress bar, and ends with a summary: done (reconstructed), skipped (no face or
no occluder: written unchanged) and failed, one line each with its reason.

A mask is refused when it is in colour (a photo saved as a mask; strokes in red) or marks more
than 3/4 of the photo (inverted?); an empty mask writes the photo unchanged, saying so.

Photos and masks may be grayscale, palette, CMYK, 16-bit or with alpha (converted by
`data_pipeline.images.load_photo`; transparent photo pixels read as white, transparent mask
pixels as black, i.e. keep); EXIF orientation is applied to both.

Exit status: 0 done (a photo without a face or without an occluder, or with an empty mask, is
written unchanged, with a message); 1 bad arguments (a flag out of range, --output the --input
without --overwrite, a folder without photos), missing or corrupt checkpoint, unreadable, refused
or wrong-size mask, a result its output format cannot hold; 2 an input is not a readable photo
(folder mode: any photo failed).
"""

import os
import sys

from absl import flags, logging

import launch

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "A photo, or a folder of photos (searched recursively).")
flags.DEFINE_string(
    "output",
    None,
    "Output file (for a photo) or folder (for a folder: each photo under its own name and in its "
    "own format, photos/x/a.jpg -> OUTPUT/x/a.jpg); not the input, unless --overwrite. Nothing "
    "outside the hole and its seam changes in PNG, BMP, TIFF or WebP (lossless); JPEG "
    "re-encodes every pixel (with the photo's own quality when it was a JPEG): write .png to "
    "keep them.",
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
flags.DEFINE_string(
    "reference",
    None,
    "A photo of the same person (or a folder of them: the one posed most like each face is "
    "used, and the record names it) whose eyes, brows and mouth are warped onto the face's "
    "mesh to guide the fill where the hole hides them.",
)
flags.DEFINE_float(
    "score_thresh",
    None,
    "Detector score threshold, in [0, 1] (default: the checkpoint's).",
    lower_bound=0.0,
    upper_bound=1.0,
)
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
    lower_bound=0,
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
    lower_bound=0,
)
flags.DEFINE_integer("feather", 3, "Width in photo pixels of the blended seam.", lower_bound=0)
flags.DEFINE_bool(
    "align", None, "Align faces by keypoints (default: as the inpainter trained, data.align)."
)
flags.DEFINE_bool(
    "overwrite",
    False,
    "Allow --output to be the --input photo (or folder): its photos are replaced by the results.",
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
flags.DEFINE_bool(
    "int8",
    True,
    "With --exported: the int8 generator when the export holds one that met its quality bar "
    "(launch/export.py --int8); --noint8 for the float one.",
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
            models = serve.load(
                FLAGS.exported, score_thresh=FLAGS.score_thresh, classes=classes, int8=FLAGS.int8
            )
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
        if jobs is not None and all(job.mask is None for job in jobs):
            raise UserError(
                f"no photo in {FLAGS.input} has a mask beside it (a.jpg and a_mask.png, in any "
                "image format); give --detector=CHECKPOINT"
            )

    if not FLAGS.exported:
        check_masks(bool(FLAGS.detector))  # before the models load
    references = ()
    if FLAGS.reference:
        from jaxinpaint.photo_files import load_references

        references = load_references(FLAGS.reference)  # a PhotoError before the models load
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
        references=references,
    )


def details_source(mask: str | None) -> str | None:
    """What the record names as the mask's source (None without --details)."""
    if not FLAGS.details:
        return None
    if mask:
        return mask
    if FLAGS.exported:
        return f"detector {os.path.join(FLAGS.exported, 'detector.onnx')}"
    return f"detector {FLAGS.detector}"  # without one, a photo without its mask fails first


def panels() -> str:
    return "compare" if FLAGS.compare else "side_by_side" if FLAGS.side_by_side else "result"


def reconstruct_folder(reconstructor, folder) -> int:
    """`photo_files.reconstruct_folder` with a progress bar; prints the summary and returns the
    exit status: 0, or 2 when any photo failed."""
    from tqdm import tqdm

    from jaxinpaint.photo_files import reconstruct_folder as run_folder

    run = run_folder(
        reconstructor,
        folder,
        panels=panels(),
        details=details_source(None),
        progress=lambda jobs: tqdm(jobs, desc="reconstruct", unit="photo"),
        log=tqdm.write,
    )
    with_masks = sum(job.mask is not None for job in folder.jobs)
    print(run.summary(FLAGS.input, FLAGS.output, with_masks))
    return 2 if run.failed else 0


def main(argv):
    from jaxinpaint.gpu_memory import share_gpu_memory

    share_gpu_memory()  # the detector (torch) and the inpainter (JAX) may share one GPU
    logging.set_verbosity(logging.WARNING)  # Orbax and tfds log every restore and read at INFO
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 1
    from data_pipeline.images import SkipImage
    from jaxinpaint import photo_files

    try:
        if not os.path.exists(FLAGS.input):
            raise UserError(f"--input {FLAGS.input} does not exist")
        single = not os.path.isdir(FLAGS.input)
        if single:
            photo_files.check_photo_name(FLAGS.input)
            if FLAGS.mask:
                photo_files.check_photo_name(FLAGS.mask, "mask")
            photo_files.check_output(FLAGS.input, FLAGS.output, FLAGS.overwrite)
        else:
            folder = photo_files.plan_folder(FLAGS.input, FLAGS.output, FLAGS.overwrite)
        reconstructor = build_reconstructor(None if single else folder.jobs)
        if not single:
            return reconstruct_folder(reconstructor, folder)
        try:
            _, message, _ = photo_files.reconstruct_file(
                reconstructor,
                FLAGS.input,
                FLAGS.output,
                FLAGS.mask,
                panels=panels(),
                details=details_source(FLAGS.mask),
            )
            print(message)
        except OSError as e:
            raise UserError(f"--output {FLAGS.output} could not be written ({e})") from None
        return 0
    except SkipImage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (UserError, photo_files.PhotoError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def cli():
    """The `jaxinpaint-reconstruct` command."""
    launch.run(main, __doc__)


if __name__ == "__main__":
    cli()
