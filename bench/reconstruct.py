"""Per-photo latency of `launch/reconstruct.py`'s work at 256x256, on this machine's CPU.

    python bench/reconstruct.py [--repeats=10] [--config=configs/full.py]
        [--detector=runs/detector/model_final.pt] [--inpainter=runs/full] [--exported=FOLDER]

One photo: the astronaut portrait (scikit-image, public domain) wearing library sunglasses. One
call = face search + 256x256 face crop for the generator and the same framing at the detector's
own input size + detector (union mask) + generator + feathered paste at full resolution, as
`launch/reconstruct.py` does it. Without checkpoints both models are untrained (the full
config's generator; configs/detector_demo.py's detector, VGG16 FPN at 128 px, with a score
threshold of 0, so the mask head runs on every detection): the time is the same as for trained
weights. The hole is the detector's mask united with the sunglasses' true mask, so the generator
always runs. Median of --repeats calls after warm-up; last line `reconstruct_ms=<median>`. The
whole photo is also timed with the full-resolution base relaxed as before the solve
(`Reconstructor(base_steps=1000)`), its calls alternating with the solved one's, with the
detector's hole and with the exact mask (`--mask`). With --exported=FOLDER the export's models
run instead (onnxruntime).
"""

import argparse
import os
import platform

import jax
import numpy as np
import torch
from bench_common import (
    RESULTS,
    ROOT,
    load_config,
    timed,
    timed_alternating,
    untrained_detector,
    write_json,
)

from data_pipeline.compose import demo_photo
from detector import predict
from jaxinpaint.gan import InpaintingGAN, prepare_batch
from jaxinpaint.inference import Inpainter
from jaxinpaint.reconstruct import Reconstructor


def untrained_inpainter(config) -> Inpainter:
    gan = InpaintingGAN(config)
    occluded, _, hole = prepare_batch(gan.dummy_batch(1))
    params = jax.jit(lambda k: gan.generator.init(k, occluded, hole, train=False)["params"])(
        jax.random.key(0)
    )
    return Inpainter(config, params)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--config", default=str(ROOT / "configs" / "full.py"))
    parser.add_argument("--detector", default="", help="trained detector checkpoint")
    parser.add_argument("--inpainter", default="", help="trained inpainter workdir")
    parser.add_argument("--device", default=predict.default_device(), help="detector device")
    parser.add_argument("--exported", default="", help="an export folder: its models instead")
    parser.add_argument("--json", default=str(RESULTS / "reconstruct.json"))
    args = parser.parse_args()

    if args.exported:  # onnxruntime's generator (int8 when the export serves it) and detector
        import serve

        models = serve.load(args.exported)
        inpainter, det = models.inpainter, models.detector
        detect = lambda f: det.detect(f)[0]
    else:
        inpainter = (
            Inpainter.from_workdir(args.inpainter)
            if args.inpainter
            else untrained_inpainter(load_config(args.config))
        )
        if args.detector:
            det = predict.Detector.from_checkpoint(args.detector, device=args.device)
        else:
            det = untrained_detector(device=args.device)  # at the size the demo's detector trains
        detect = det
    size = inpainter.size
    photo, true_mask = demo_photo()

    rec = Reconstructor(inpainter, det, size=size, mask_size=det.input_size)
    found = rec.find_faces(photo)[0]
    alignment = rec.alignment(found)  # the generator's crop, as Reconstructor makes it
    seen_by = rec.alignment(found, det.input_size)  # the same framing at the detector's size
    face, seen = alignment.crop(photo), seen_by.crop(photo)
    truth = seen_by.crop(true_mask.astype(np.float32))
    rec.mask_source = lambda f: np.maximum(detect(f), truth)
    hole = alignment.crop(true_mask.astype(np.float32)) > 0.5

    rows = {
        "face search": timed(lambda: rec.find_faces(photo), args.repeats),
        "detector": timed(lambda: detect(seen), args.repeats),
        "inpainter": timed(lambda: inpainter(face, hole), args.repeats),
    }
    # The whole photo with the base solved (now) and relaxed as before, calls alternating so
    # that both see the same load.
    relaxed = Reconstructor(inpainter, det, size=size, mask_size=det.input_size, base_steps=1000)
    relaxed.mask_source = rec.mask_source
    rows |= timed_alternating(
        {
            "whole photo": lambda: rec(photo),
            "whole photo, base relaxed (before)": lambda: relaxed(photo),
            "whole photo, exact mask": lambda: rec(photo, true_mask),
            "whole photo, exact mask, base relaxed": lambda: relaxed(photo, true_mask),
        },
        args.repeats,
    )
    print(
        f"photo {photo.shape[1]}x{photo.shape[0]}, model {size}x{size}, detector "
        f"{det.input_size}x{det.input_size}, repeats {args.repeats}; "
        f"JAX on {jax.devices()[0].device_kind}, detector on {args.device}"
        if not args.exported
        else f"exported models {args.exported} (onnxruntime)"
    )
    print(f"{'part':<36}{'ms':>10}")
    for name, ms in rows.items():
        print(f"{name:<36}{ms:>10.1f}")
    result = dict(
        benchmark="reconstruct_latency",
        machine=platform.machine(),
        cpus=os.cpu_count(),
        jax=jax.__version__,
        jax_device=jax.devices()[0].device_kind,
        detector_device=args.device,
        torch=torch.__version__,
        size=size,
        detector_size=det.input_size,
        exported=args.exported or None,
        repeats=args.repeats,
        ms=rows,
        reconstruct_ms=rows["whole photo"],
    )
    write_json(args.json, result)
    print(f"reconstruct_ms={rows['whole photo']:.1f}")


if __name__ == "__main__":
    main()
