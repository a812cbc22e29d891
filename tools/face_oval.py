"""Measures `data_pipeline.align.FACE_OVAL`: the mean face-mesh outline of aligned faces.

    python tools/face_oval.py [--size=128]

Each sample train face (the split `launch/build_dataset.py` makes by default), aligned to the
template at --size, is shown to BlazeFace and the 468-point face mesh (`data_pipeline.landmarks`)
on a gray border; the mesh's face-outline vertices, averaged over the faces, as fractions of the
crop side, are printed as the constant to paste into data_pipeline/align.py.
"""

import argparse

import cv2
import numpy as np

from data_pipeline import landmarks, sample_faces, splits

# MediaPipe's face-outline vertices (FACEMESH_FACE_OVAL), clockwise from the top of the forehead.
OVAL_VERTICES = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="aligned crop side (px)")
    args = parser.parse_args()
    faces = splits.faces_of_split(sample_faces.load(args.size), "train", seed=0)
    detector, mesh = landmarks.BlazeFace(), landmarks.FaceMesh()
    pad = args.size // 4
    outlines = []
    for face in faces:
        framed = cv2.copyMakeBorder(face.image, *(pad,) * 4, cv2.BORDER_CONSTANT, value=(128,) * 3)
        found = detector(framed)
        if not found:
            continue
        best = max(found, key=lambda d: d.score)
        _, points = mesh(framed, best.keypoints, best.box)
        outlines.append((points[list(OVAL_VERTICES)] - pad) / args.size)
    oval = np.mean(outlines, axis=0)
    print(f"# mean face-mesh outline of {len(outlines)} of {len(faces)} aligned train faces")
    print("FACE_OVAL = np.array(")
    print("    [")
    for row in range(0, len(oval), 4):
        print("        " + " ".join(f"[{x:.3f}, {y:.3f}]," for x, y in oval[row : row + 4]))
    print("    ],")
    print("    np.float64,")
    print(")  # fmt: skip")


if __name__ == "__main__":
    main()
