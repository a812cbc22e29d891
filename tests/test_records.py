"""The record and the `.details/` folder of one reconstruction (`jaxinpaint.records`)."""

import json

import numpy as np

from jaxinpaint.reconstruct import FaceResult, Reconstruction
from jaxinpaint.records import photo_record, write_details


def _result(n_faces: int) -> Reconstruction:
    image = np.zeros((64, 96, 3), np.uint8)
    hole = np.zeros((64, 96), bool)
    hole[10:20, 10:20] = True
    faces = tuple(
        FaceResult((10 + 40 * i, 10, 30, 30), np.eye(2, 3), True, 0.1) for i in range(n_faces)
    )
    return Reconstruction(image, faces, hole, {"total": 0.25})


def test_record_lists_each_face_and_the_replaced_pixels():
    record = photo_record(_result(2), mask="mask.png", input="a.png", output="b.png")
    assert list(record)[:3] == ["input", "output", "mask"]
    assert record["size_wh"] == [96, 64]
    assert record["replaced_pixels"] == 100
    assert [f["box_xywh"] for f in record["faces"]] == [[10, 10, 30, 30], [50, 10, 30, 30]]


def test_details_of_a_second_run_replace_the_first_whole(tmp_path):
    folder = str(tmp_path / "out.png.details")
    photo = np.full((64, 96, 3), 128, np.uint8)
    for n_faces in (2, 1):  # the second run finds fewer faces: no file of the first may stay
        result = _result(n_faces)
        write_details(folder, photo, result, photo_record(result, mask="m"))
    assert sorted(p.name for p in (tmp_path / "out.png.details" / "faces").iterdir()) == [
        "0_after.png",
        "0_before.png",
    ]
    assert len(json.loads((tmp_path / "out.png.details" / "record.json").read_text())["faces"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["out.png.details"]  # no temporary left
