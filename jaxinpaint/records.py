"""What a reconstruction reports: the JSON record of one photo and the `.details/` folder beside
its output. The CLI (`launch/reconstruct.py`) and any other caller (a server, a notebook) write
the same record; NumPy/OpenCV only, like `jaxinpaint.reconstruct`."""

from __future__ import annotations

import json
import os

import numpy as np

from data_pipeline import atomic
from data_pipeline.faces import face_bounds
from jaxinpaint.reconstruct import Reconstruction, draw_overlay
from jaxinpaint.samples import write_image


def photo_record(result: Reconstruction, *, mask: str, **fields) -> dict:
    """The record of one reconstructed photo: `fields` (e.g. input, output) first, then the mask's
    source, the photo's size, the pixels replaced (and how many the model and the smooth base
    filled), each face (box, framing, hole fraction,
    detections with class, score and box) and the seconds per stage."""
    h, w = result.image.shape[:2]
    faces = [
        {
            "box_xywh": list(face.box),
            "aligned": face.aligned,
            "hole_fraction": round(face.hole_fraction, 4),
            "inpainted": face.inpainted,
            "detections": [
                {"category": d.category, "score": round(d.score, 4), "box_xyxy": list(d.box)}
                for d in face.detections
            ],
            **(
                {"reference": face.reference, "reference_cover": round(face.reference_cover, 4)}
                if face.reference is not None
                else {}
            ),
        }
        for face in result.faces
    ]
    return {
        **fields,
        "mask": mask,
        "size_wh": [w, h],
        "replaced_pixels": int(result.hole.sum()),
        # of those: inside a face's window (the model's fill) / outside every window (smooth)
        "model_pixels": result.model_pixels,
        "base_pixels": result.base_pixels,
        "faces": faces,
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    }


def write_details(folder: str, photo: np.ndarray, result: Reconstruction, record: dict) -> None:
    """Writes `folder` whole, replacing any earlier one (no file of an earlier run stays beside
    this record): mask.png (the pixels replaced), overlay.png (`draw_overlay`), faces/<i>_before.png
    and <i>_after.png (each face's square of `photo` and of the result) and record.json."""
    with atomic.folder(folder) as tmp:
        write_image(os.path.join(tmp, "mask.png"), result.hole.astype(np.uint8) * 255)
        write_image(os.path.join(tmp, "overlay.png"), draw_overlay(photo, result))
        for i, face in enumerate(result.faces):
            x0, y0, x1, y1 = face_bounds(face.box, photo.shape)
            if x1 > x0 and y1 > y0:
                for name, image in (("before", photo), ("after", result.image)):
                    path = os.path.join(tmp, "faces", f"{i}_{name}.png")
                    write_image(path, np.ascontiguousarray(image[y0:y1, x0:x1]))
        atomic.write_text(os.path.join(tmp, "record.json"), json.dumps(record, indent=2))
