r"""Evaluate a trained inpainter against OpenCV's Telea and Navier-Stokes inpainting.

    python launch/evaluate.py --workdir=runs/demo --dataset=runs/demo/data [--split=test]
        [--photos [--detector=runs/demo/detector/model_final.pt]]
        [--inception=pt_inception-2015-12-05-6726825d.pth]

Reads the `occluded_faces` split of a `launch/build_dataset.py` output, fills every hole with the
workdir's generator and with both classical baselines, and writes into `<workdir>/eval/`:
`eval_<split>.json` and `eval_<split>.md` (PSNR and SSIM over the whole image and over the hole,
LPIPS; overall and by mask ratio, category and gender) and `best_worst_<split>.png` (rows:
occluded | mask | model | telea | ns | harmonic | original; the 4 best, then the 4 worst by the
model's LPIPS).
With `--inception` (pytorch-fid's FID Inception weights, `.pth`, or the same state dict as `.npz`;
docs/evaluation.md) the reports also hold each method's FID against the originals.
Examples whose size differs from the model's are resized to it (the hole: every pixel the
full-resolution hole touches). `--photos` scores the split's faces again as whole photos through
`Reconstructor` (`eval_<split>_photos.md`); `--detector=CHECKPOINT` adds the same with the hole
the detector finds on each photo, filled by the model and by the baselines alike, scored over the
pixels the occluder hid (`eval_<split>_photos_detector.md`): what a user of
`launch/reconstruct.py --detector` gets. With `--photos_crossing` (the default) each photo comes
a second time, framed by a blurred border and with its occluder across the face's edge, and the
photo tables gain a row by whether the occluder crosses the face's window. Both models must have
trained on none of the split's faces or persons. Exit status 1 on a user error.
"""

import itertools
import os
import sys

import cv2
import numpy as np
from absl import flags, logging
from tqdm import tqdm

import launch

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir of the inpainter (launch/train.py).")
flags.DEFINE_string("dataset", None, "Output folder of launch/build_dataset.py.")
flags.DEFINE_string("split", "test", "Dataset split: train, validation or test.")
flags.DEFINE_string("out", None, "Report folder (default: <workdir>/eval).")
flags.DEFINE_enum(
    "checkpoint",
    "auto",
    ["auto", "best", "latest"],
    "Which checkpoint: best by validation, latest, or auto (best when the run kept one).",
)
flags.DEFINE_bool(
    "photos",
    False,
    "Also score the model through Reconstructor on the split's faces at their own resolution "
    "(the sample crops, or a folder build's source photos) against cv2.inpaint there.",
)
flags.DEFINE_string(
    "detector",
    None,
    "With --photos: a detector checkpoint (launch/train_detector.py). The photos are scored a "
    "second time with the hole the detector finds, as launch/reconstruct.py finds it, filled by "
    "every method; the scores stay over the pixels the occluder hid.",
)
flags.DEFINE_bool(
    "photos_crossing",
    True,
    "With --photos: each example a second time, on the photo framed by a blurred copy of itself, "
    "its occluder placed across the face's edge (below the chin; a cap above the brow), so that "
    "the tables' 'By window' rows score occluders that reach past the face's window.",
)
flags.DEFINE_integer("max_examples", 0, "Evaluate at most this many examples (0 = all).")
flags.DEFINE_integer("batch_size", 8, "Examples per generator call.")
flags.DEFINE_string(
    "inception", None, "FID Inception weights (pytorch-fid's .pth, or .npz); no FID without."
)
flags.mark_flags_as_required(["workdir", "dataset"])


def _resized(example: dict, size: int) -> dict:
    """The example at the model's resolution: images by area averaging; the hole is every pixel
    the full-resolution hole touches (as in Reconstructor), so that no pixel blended with the
    occluder is handed to any method as a known one."""
    if example["original"].shape[0] == size:
        return example
    out = dict(example)
    for key in ("original", "occluded"):
        out[key] = cv2.resize(example[key], (size, size), interpolation=cv2.INTER_AREA)
    hole = (np.asarray(example["mask"]).reshape(example["original"].shape[:2]) > 0).astype(
        np.float32
    )
    touched = cv2.resize(hole, (size, size), interpolation=cv2.INTER_AREA) > 1e-3
    out["mask"] = touched.astype(np.uint8)[..., None]
    return out


def _inception_state_dict(path: str) -> dict:
    """pytorch-fid's weights file read with torch (kept out of jaxinpaint/), or an .npz."""
    from jaxinpaint.evaluation import fid

    if path.endswith(".npz"):
        return fid.load_state_dict_npz(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Inception weights {path} do not exist")
    import pickle

    import torch

    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"Inception weights {path} are not a readable torch file ({e})") from e
    if not isinstance(state_dict, dict):
        raise ValueError(
            f"Inception weights {path} hold a {type(state_dict).__name__}, not a state dict"
        )
    return {k: v.numpy() for k, v in state_dict.items() if isinstance(v, torch.Tensor)}


def _check_unseen(workdir: str, dataset: str, split: str) -> str:
    """Raises ValueError when `split` shares a face or a person with what the workdir trained on
    (its train_faces.json, written by launch/train.py); returns what the split's faces are, for
    the reports' titles."""
    from data_pipeline import splits

    scored = splits.read_index_faces(dataset, split)
    who = f"{len(scored)} faces of {len(set(scored.values()))} persons"
    trained = splits.read_record(workdir)
    if trained is None:
        logging.warning(
            "%s has no %s (trained before it was recorded): cannot check that the %s split is "
            "unseen", workdir, splits.RECORD, split,
        )  # fmt: skip
        return f"{who}, not checked against training"
    faces, persons = splits.overlap(trained, scored)
    if faces or persons:
        raise ValueError(
            f"the {split} split of {dataset} shares {len(faces)} faces and {len(persons)} persons "
            f"with the faces {workdir} trained on (e.g. {(faces or persons)[:3]}); scores on it "
            "would not be honest. Train with the same split seed as the build "
            "(config.data.split_seed = the build's --seed) or evaluate another split"
        )
    return f"{who}, none of whom training saw"


def _cell(value: float | None) -> str:
    """A mean that may be missing (no example had a value): "-"."""
    return "-" if value is None else f"{value:.4f}"


def _print_table(summary: dict, fids: dict | None = None) -> None:
    overall = summary["overall"]
    header = f"{'method':<9}{'PSNR':>8}{'PSNR hole':>11}{'SSIM':>8}{'SSIM hole':>11}{'LPIPS':>8}"
    header += f"{'structure':>11}"
    print(header + (f"{'FID':>9}" if fids else ""))
    for method, m in overall.items():
        if not isinstance(m, dict):  # "n"
            continue
        print(
            f"{method:<9}{m['psnr']:>8.2f}{m['psnr_hole']:>11.2f}{m['ssim']:>8.3f}"
            f"{m['ssim_hole']:>11.3f}{m['lpips']:>8.4f}{_cell(m.get('structure')):>11}"
            + (f"{fids[method]:>9.2f}" if fids else "")
        )


def _load_detector(who: str):
    """The --detector checkpoint, after checking that it trained on none of the split's faces or
    persons; returns it and the reports' description of the faces."""
    from detector.predict import Detector, default_device

    det_who = _check_unseen(os.path.dirname(FLAGS.detector), FLAGS.dataset, FLAGS.split)
    detector = Detector.from_checkpoint(FLAGS.detector, device=default_device())
    if det_who != who:  # the inpainter's and the detector's checks say different things
        who = f"{who}; detector: {det_who.split(', ', 1)[-1]}"
    return detector, who


def _with_detector_holes(examples, detector, size: int, align: bool):
    """Each example with `fill`: the hole `launch/reconstruct.py --detector` would replace (the
    detector's union mask on the aligned face at its own size, grown by the command's default)."""
    from jaxinpaint.reconstruct import DETECTOR_GROW, ON_FACE, Reconstructor

    finder = Reconstructor(
        None,  # a hole finder: no inpainting
        detector.detect,
        size=size,
        align=align,
        base="none",
        mask_size=detector.input_size,
        grow=DETECTOR_GROW,
        on_face=ON_FACE,
    )
    for ex in examples:
        yield {**ex, "fill": finder.hole(ex["occluded"])}


def _evaluate_photos(inpainter, out_dir: str, who: str, detector=None) -> str:
    """The model through Reconstructor vs cv2.inpaint, on photos at their own resolution; with a
    `detector`, every method fills the hole it finds instead of the exact one."""
    from jaxinpaint.evaluation import photos, report
    from jaxinpaint.reconstruct import DETECTOR_GROW, ON_FACE, Reconstructor
    from jaxinpaint.samples import write_image

    align = inpainter.config.data.get("align", True)
    rec = Reconstructor(inpainter, None, size=inpainter.size, align=align)
    examples = photos.photo_examples(
        FLAGS.dataset, FLAGS.split, seed=0, crossing=FLAGS.photos_crossing
    )
    if FLAGS.max_examples:
        examples = itertools.islice(examples, FLAGS.max_examples)
    suffix, holes = "", "the exact occluder masks"
    if detector is not None:
        examples = _with_detector_holes(examples, detector, inpainter.size, align)
        suffix = "_detector"
        holes = (
            f"holes the detector found ({os.path.basename(FLAGS.detector)}, score >= "
            f"{detector.score_thresh} by {detector.score}, grown {DETECTOR_GROW} of its px, "
            f"at least {ON_FACE:.0%} on the face); scored over the exact occluder"
        )
    with tqdm(desc=f"photos {FLAGS.split}", unit="photo") as bar:
        records = photos.score_photos(
            lambda o, m: rec(o, m).image, _ticked(examples, bar), smooth_steps=rec.base_steps
        )
    summary = report.aggregate(records)
    n = len(records)
    title = (
        f"Through Reconstructor, whole photos at their resolution ({FLAGS.split}: {n} examples; "
        f"{who}); every method fills {holes}"
    )
    _, md_path = report.write_report(summary, out_dir, f"eval_{FLAGS.split}_photos{suffix}", title)
    gap = lambda t: np.full((t.shape[0], 2, 3), 255, np.uint8)
    rows = []
    for r in records[:6]:
        tiles = [
            r["faces"][k] for k in ("occluded", "model", "telea", "original") if k in r["faces"]
        ]
        side = max(t.shape[0] for t in tiles)
        tiles = [cv2.resize(t, (side, side)) for t in tiles]
        rows.append(np.concatenate([x for t in tiles for x in (t, gap(t))][:-1], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    strip_path = os.path.join(out_dir, f"photos_{FLAGS.split}{suffix}.png")
    write_image(strip_path, np.concatenate(rows))
    print(f"\nthrough Reconstructor, at the photos' resolution ({n} examples; {who}), {holes}:")
    _print_table(summary)
    return md_path


def _ticked(items, bar):
    for item in items:
        yield item
        bar.update(1)


def main(argv):
    logging.set_verbosity(logging.WARNING)  # Orbax and tfds log every restore and read at INFO
    del argv
    from data_pipeline import tfds_builder
    from jaxinpaint.evaluation import evaluate, fid, report
    from jaxinpaint.inference import Inpainter
    from jaxinpaint.samples import write_image

    try:
        fid_features = None
        if FLAGS.inception:  # first: bad weights fail before the model and the data load
            fid_features = fid.InceptionFeatures(
                _inception_state_dict(FLAGS.inception), source=FLAGS.inception
            )
        who = _check_unseen(FLAGS.workdir, FLAGS.dataset, FLAGS.split)
        detector = detector_who = None
        if FLAGS.detector:
            if not FLAGS.photos:
                raise ValueError("--detector scores whole photos: give --photos too")
            detector, detector_who = _load_detector(who)
        inpainter = Inpainter.from_workdir(FLAGS.workdir, checkpoint=FLAGS.checkpoint)
        examples = tfds_builder.load_numpy(FLAGS.dataset, FLAGS.split)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    examples = (_resized(ex, inpainter.size) for ex in examples)
    if FLAGS.max_examples:
        examples = itertools.islice(examples, FLAGS.max_examples)

    def model(occluded, hole):
        return inpainter.inpaint_batch(occluded, hole)[1]

    with tqdm(desc=f"evaluate {FLAGS.split}", unit="img") as bar:
        result = evaluate.evaluate(
            model,
            examples,
            fid_features=fid_features,
            batch_size=FLAGS.batch_size,
            progress=bar.update,
            aligned=inpainter.config.data.get("align", True),
        )
    summary = report.aggregate(result.records, result.fid)
    out_dir = FLAGS.out or os.path.join(FLAGS.workdir, "eval")
    title = f"Inpainting on the {FLAGS.split} split ({len(result.records)} examples; {who})"
    json_path, md_path = report.write_report(summary, out_dir, f"eval_{FLAGS.split}", title)
    best, worst = evaluate.best_and_worst(result, "model", "lpips")
    strip_path = os.path.join(out_dir, f"best_worst_{FLAGS.split}.png")
    write_image(strip_path, evaluate.strip(result, best + worst))

    print(f"\ncrops at {inpainter.size}² ({len(result.records)} examples; {who}):")
    _print_table(summary, result.fid)
    if FLAGS.photos:
        photos_md = _evaluate_photos(inpainter, out_dir, who)
        print(f"wrote {photos_md}")
    if detector is not None:
        photos_md = _evaluate_photos(inpainter, out_dir, detector_who, detector)
        print(f"wrote {photos_md}")
    print(f"wrote {md_path}, {json_path} and {strip_path}")
    return 0


def cli():
    """The `jaxinpaint-evaluate` command."""
    launch.run(main, __doc__)


if __name__ == "__main__":
    cli()
