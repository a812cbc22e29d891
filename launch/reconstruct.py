r"""Remove what covers the faces in photos and reconstruct the faces underneath.

    python launch/reconstruct.py --input=photo.jpg --output=out.png \
        --detector=runs/demo/detector/model_final.pt --inpainter=runs/demo/inpainter \
        [--remove=sunglasses,mask] [--side_by_side]
    python launch/reconstruct.py --input=photos/ --output=out/ --detector=... --inpainter=...
    python launch/reconstruct.py --input=photo.jpg --mask=mask.png --output=out.png \
        --inpainter=... [--compare]   # --compare: input | result | cv2.inpaint TELEA

Faces are found with keypoints (BlazeFace, Haar as the fallback) and aligned as the inpainter's
training faces were (`--align`, default: as in its config); the detector's masks of the chosen
classes (default: all 19) above its score threshold, or the pixels of `--mask` (white = remove),
are inpainted by the generator at its resolution, and the fill is warped back into the photo at
full resolution (as a correction of a smooth fill made there), replacing the hole whole with a
feathered seam outside it. Outputs are written whole or not at all (PNG or JPEG, by the
output's extension; folder mode writes PNGs).

Exit status: 0 done (a photo without a face or without an occluder is written unchanged, with a
message); 1 bad arguments, missing or corrupt checkpoint; 2 an input is not a readable photo
(folder mode: any input).
"""

import os
import sys

import numpy as np
from absl import app, flags, logging
from PIL import Image

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "A photo, or a folder of photos (searched recursively).")
flags.DEFINE_string("output", None, "Output file (for a photo) or folder (for a folder).")
flags.DEFINE_string("inpainter", None, "Training workdir of the inpainter (launch/train.py).")
flags.DEFINE_string("detector", None, "Detector checkpoint (launch/train_detector.py).")
flags.DEFINE_string("mask", None, "Instead of the detector: a mask image the photo's size.")
flags.DEFINE_list("remove", [], "Occluder classes to remove (default: all 19).")
flags.DEFINE_float("score_thresh", None, "Detector score threshold (default: the checkpoint's).")
flags.DEFINE_integer("dilate", 4, "Pixels (at the model's resolution) the hole grows by.")
flags.DEFINE_integer("feather", 3, "Width in photo pixels of the blended seam.")
flags.DEFINE_bool(
    "align", None, "Align faces by keypoints (default: as the inpainter trained, data.align)."
)
flags.DEFINE_bool("side_by_side", False, "Write the input and the result side by side.")
flags.DEFINE_bool(
    "compare", False, "Write input | result | cv2.inpaint TELEA side by side (needs --mask)."
)
flags.DEFINE_string("device", None, "Detector device, e.g. cpu or cuda:0 (default: cuda if any).")
flags.mark_flags_as_required(["input", "output", "inpainter"])


class UserError(Exception):
    """Reported as one line, exit status 1."""


def build_reconstructor():
    from jaxinpaint.inference import Inpainter
    from jaxinpaint.reconstruct import Reconstructor

    if not FLAGS.detector and not FLAGS.mask:
        raise UserError("give --detector=CHECKPOINT (or --mask=FILE for a single photo)")
    if FLAGS.compare and not FLAGS.mask:
        raise UserError("--compare fills the --mask with cv2.inpaint too; give --mask=FILE")
    if FLAGS.mask and os.path.isdir(FLAGS.input):
        raise UserError("--mask belongs to a single photo; use --detector for a folder")
    try:
        inpainter = Inpainter.from_workdir(FLAGS.inpainter)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    mask_source = None
    if FLAGS.detector:
        from data_pipeline.categories import CATEGORIES
        from detector.predict import Detector, default_device

        unknown = sorted(set(FLAGS.remove) - set(CATEGORIES))
        if unknown:
            raise UserError(f"--remove: unknown classes {unknown}; choose from {list(CATEGORIES)}")
        try:
            mask_source = Detector.from_checkpoint(
                FLAGS.detector,
                score_thresh=FLAGS.score_thresh,
                classes=tuple(FLAGS.remove) or None,
                device=FLAGS.device or default_device(),
            )
        except (FileNotFoundError, ValueError, RuntimeError) as e:
            raise UserError(f"detector checkpoint {FLAGS.detector}: {e}") from None
    return Reconstructor(
        inpainter,
        mask_source,
        size=inpainter.size,
        dilate=FLAGS.dilate,
        feather=FLAGS.feather,
        align=inpainter.config.data.get("align", True) if FLAGS.align is None else FLAGS.align,
    )


def reconstruct_one(reconstructor, src: str, dst: str, photo_mask=None) -> str:
    """Writes the result for one photo; returns a one-line message. Raises SkipImage."""
    from data_pipeline.images import load_rgb
    from jaxinpaint.samples import write_image

    photo = load_rgb(src, min_side=16)
    result = reconstructor(photo, photo_mask)
    panels = [photo, result.image] if FLAGS.side_by_side or FLAGS.compare else [result.image]
    if FLAGS.compare:  # OpenCV's Telea on the same (full-resolution) mask, for comparison
        from jaxinpaint.evaluation.baselines import classical_inpaint

        panels.append(classical_inpaint(photo, photo_mask, "telea"))
    out = np.concatenate(panels, axis=1)
    write_image(dst, out)
    if not result.faces:
        return f"{src}: no face found; written unchanged to {dst}"
    if not result.changed:
        return (
            f"{src}: no occluder found on {len(result.faces)} face(s); written unchanged to {dst}"
        )
    done = sum(f.inpainted for f in result.faces)
    return f"{src}: reconstructed {done} of {len(result.faces)} face(s) -> {dst}"


def main(argv):
    logging.set_verbosity(logging.WARNING)  # Orbax and tfds log every restore and read at INFO
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 1
    from data_pipeline.images import SkipImage, list_images

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
        reconstructor = build_reconstructor()
        if single:
            photo_mask = None
            if FLAGS.mask:
                try:
                    photo_mask = np.asarray(Image.open(FLAGS.mask).convert("L")) > 127
                except OSError as e:
                    raise UserError(f"--mask {FLAGS.mask} is not a readable image: {e}") from None
            try:
                print(reconstruct_one(reconstructor, FLAGS.input, FLAGS.output, photo_mask))
            except ValueError as e:  # a mask of the wrong size
                raise UserError(str(e)) from None
            return 0
    except SkipImage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    from tqdm import tqdm

    photos = list_images(FLAGS.input)
    failed = []
    for src in tqdm(photos, desc="reconstruct", unit="photo"):
        rel = os.path.splitext(os.path.relpath(src, FLAGS.input))[0] + ".png"
        try:
            tqdm.write(reconstruct_one(reconstructor, src, os.path.join(FLAGS.output, rel)))
        except SkipImage as e:
            failed.append(str(e))
            tqdm.write(f"skipped {e}")
    print(f"{len(photos) - len(failed)} of {len(photos)} photos written to {FLAGS.output}")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(app.run(main))
