"""A guide face: another photo of a face, warped onto the target face's mesh and matched to its
colours, so that a fill can borrow the eyes, brows and mouth the target's hole hides.

The target's mesh is MediaPipe's 468 points (`landmarks.FaceMesh.track`), found behind the
occluder as the face search finds them; the guide's mesh is found on an unoccluded photo (a
reference photo of the same person, or an exemplar). Both meshes are triangulated alike (the
Delaunay triangles of the target's points), and each target pixel inside a triangle reads the
guide at the same barycentric place in the guide's triangle: a piecewise-affine warp, made as
one `cv2.remap`. The guide's colours are then matched to the target's visible skin (mean and
spread per Lab channel, over the face pixels both show).

What a fill takes from the guide is its detail (`jaxinpaint.reconstruct`): the guide minus its own
smooth fill of the same hole, added to the photo's smooth fill. With the harmonic fill that is
Poisson image editing (Pérez et al. 2003) in its membrane form: inside the hole the guide's
Laplacian, on the border the photo's values, so the guide's features come in without its
lighting's offset. NumPy/OpenCV only: reconstruct and serve use it without JAX.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from data_pipeline import landmarks
from data_pipeline.faces import FoundFace, face_mesh, find_faces
from data_pipeline.landmarks import LEFT_BROW, LEFT_EYE, LIPS, RIGHT_BROW, RIGHT_EYE

# Least face presence (`FaceMesh` score) for a mesh to guide: below it, the mesh is a guess.
MIN_PRESENCE = 0.5
# The parts a guide lends: each eye with its brow, and the lips.
# Skin is left to the smooth fill: a reference's skin (its pores, its shading) is never where the
# photo's was, and on holes over cheeks or brow alone its detail only added error (bench/
# reference_guide.py, docs/inpainter.md).
PARTS = (RIGHT_EYE + RIGHT_BROW, LEFT_EYE + LEFT_BROW, LIPS)


@dataclasses.dataclass(frozen=True)
class Mesh:
    """A face's mesh in its photo: [468, 2] points (x, y) and the network's face presence."""

    points: np.ndarray
    presence: float

    @property
    def eye_distance(self) -> float:
        right, left = landmarks.mesh_keypoints(self.points)[:2]
        return float(np.linalg.norm(left - right))


def find_mesh(photo: np.ndarray, face: FoundFace, mesher: landmarks.FaceMesh | None = None) -> Mesh:
    """The mesh of `face` (found with keypoints by `faces.find_faces`) in `photo`."""
    if face.keypoints is None:
        raise ValueError("a face without keypoints (found by Haar alone) has no mesh to guide by")
    presence, points = (mesher or face_mesh()).track(photo, face.keypoints, face.box)
    return Mesh(points.astype(np.float32), float(presence))


def triangles(points: np.ndarray) -> np.ndarray:
    """The Delaunay triangles of `points` ([N, 2]) as [T, 3] indices into them."""
    points = np.asarray(points, np.float32)
    lo, hi = points.min(0) - 1, points.max(0) + 1
    subdiv = cv2.Subdiv2D((int(np.floor(lo[0])), int(np.floor(lo[1])), *map(int, hi - lo + 2)))
    subdiv.insert([tuple(map(float, p)) for p in points])
    corners = subdiv.getTriangleList().reshape(-1, 3, 2)
    # Subdiv2D gives corners as coordinates: each is one of the points (its nearest one).
    nearest = np.linalg.norm(corners[:, :, None] - points[None, None], axis=-1).argmin(-1)
    close = np.linalg.norm(points[nearest] - corners, axis=-1).max(-1) < 1e-3
    return nearest[close].astype(np.int32)


def warp(
    source: np.ndarray,
    source_points: np.ndarray,
    target_points: np.ndarray,
    shape: tuple[int, ...],
    region: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`source` (HxWxC) warped piecewise-affinely so that `source_points` land on
    `target_points` ([N, 2] each), in an image of `shape`: (warped float32, valid bool), where
    valid marks the pixels inside the target points' triangles whose source lies in `source`.
    With `region` (x0, y0, x1, y1, clipped to `shape`) only that part is made and returned."""
    h, w = shape[:2]
    tris = triangles(target_points)
    x0, y0, x1, y1 = region or (0, 0, w, h)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), max(min(x1, w), x0), max(min(y1, h), y0)
    channels = source.shape[2] if source.ndim == 3 else 1
    if x1 == x0 or y1 == y0 or not len(tris):
        return np.zeros((y1 - y0, x1 - x0, channels), np.float32), np.zeros(
            (y1 - y0, x1 - x0), bool
        )
    ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
    offset = np.array([x0, y0], np.float32)
    for k, tri in enumerate(tris):  # sub-pixel corners (4 fractional bits)
        corners = np.round((target_points[tri] - offset) * 16).astype(np.int32)
        cv2.fillConvexPoly(ids, corners, int(k), lineType=cv2.LINE_8, shift=4)
    # Each triangle's affine map from target to source pixels: [x, y, 1] @ maps[k] = (sx, sy).
    rows = np.concatenate([target_points[tris], np.ones((len(tris), 3, 1), np.float32)], -1)
    maps = np.linalg.pinv(rows.astype(np.float64)) @ source_points[tris].astype(np.float64)
    ys, xs = np.nonzero(ids >= 0)
    k = ids[ys, xs]
    px = np.stack([xs + x0, ys + y0, np.ones_like(xs)], -1).astype(np.float64)
    sx = np.einsum("ni,nij->nj", px, maps[k]).astype(np.float32)
    map_x = np.full(ids.shape, -1.0, np.float32)
    map_y = np.full(ids.shape, -1.0, np.float32)
    map_x[ys, xs], map_y[ys, xs] = sx[:, 0], sx[:, 1]
    warped = cv2.remap(
        np.ascontiguousarray(source, np.float32),
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
    ).reshape((*ids.shape, channels))
    sh, sw = source.shape[:2]
    inside = (ids >= 0) & (map_x >= 0) & (map_y >= 0) & (map_x <= sw - 1) & (map_y <= sh - 1)
    return warped, inside


def match_colours(
    guide: np.ndarray, target: np.ndarray, where: np.ndarray, least: int = 64
) -> np.ndarray:
    """`guide` (float32 RGB in [0, 255]) with each Lab channel's mean and spread over `where`
    set to `target`'s (uint8 or float RGB) over the same pixels; the spread's ratio is kept in
    [0.5, 2] so that a few odd pixels cannot blow it up. Fewer than `least` pixels: unchanged."""
    if int(where.sum()) < least:
        return guide
    g = cv2.cvtColor(np.clip(guide, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    t = cv2.cvtColor(np.asarray(target, np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    gs, ts = g[where], t[where]
    ratio = np.clip(ts.std(0) / np.maximum(gs.std(0), 1e-3), 0.5, 2.0)
    g = (g - gs.mean(0)) * ratio + ts.mean(0)
    return cv2.cvtColor(g, cv2.COLOR_Lab2RGB) * 255.0


@dataclasses.dataclass(frozen=True)
class Guide:
    """A guide face over `box` (x0, y0, x1, y1) of the target photo: `image` (float32 RGB,
    colour-matched) and `valid` (float32 in [0, 1]: where it lends its eyes, brows and lips,
    fading to 0 at the warp's edge and around those parts); nothing lends outside `box`."""

    image: np.ndarray
    valid: np.ndarray
    box: tuple[int, int, int, int]

    def crop(self, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(image, valid) over another `box` of the photo, zero where this guide has nothing."""
        x0, y0, x1, y1 = box
        image = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        valid = np.zeros((y1 - y0, x1 - x0), np.float32)
        gx0, gy0, gx1, gy1 = self.box
        ix0, iy0, ix1, iy1 = max(x0, gx0), max(y0, gy0), min(x1, gx1), min(y1, gy1)
        if ix1 > ix0 and iy1 > iy0:
            mine = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
            theirs = (slice(iy0 - gy0, iy1 - gy0), slice(ix0 - gx0, ix1 - gx0))
            image[mine], valid[mine] = self.image[theirs], self.valid[theirs]
        return image, valid


def guide_face(
    target: np.ndarray,
    target_mesh: Mesh,
    hole: np.ndarray,
    source: np.ndarray,
    source_mesh: Mesh,
    fade: int = 4,
) -> Guide:
    """`source` (a photo whose face has `source_mesh`) warped onto `target_mesh` in `target`'s
    pixels around `hole` (HxW bool), its colours matched to the target's visible face."""
    ys, xs = np.nonzero(hole)
    h, w = target.shape[:2]
    if not len(xs):
        return Guide(np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), (0, 0, 0, 0))
    pad = 2 * fade + int(0.25 * target_mesh.eye_distance) + 2
    x0, y0 = max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0)
    x1, y1 = min(int(xs.max()) + 1 + pad, w), min(int(ys.max()) + 1 + pad, h)
    box = (x0, y0, x1, y1)
    image, valid = warp(source, source_mesh.points, target_mesh.points, target.shape, box)
    # The guide's colours from the face pixels both show, around the hole (not in it).
    ring = valid & ~hole[y0:y1, x0:x1]
    image = match_colours(image, target[y0:y1, x0:x1], ring)
    soft = valid.astype(np.float32)
    if fade:  # a ramp from 0 at the warp's edge to 1 `fade` pixels inside it
        soft = np.clip(cv2.distanceTransform(valid.astype(np.uint8), cv2.DIST_L2, 5) / fade, 0, 1)
    local = dataclasses.replace(target_mesh, points=target_mesh.points - np.float32([x0, y0]))
    return Guide(image, soft * parts_weight(local, soft.shape), box)


def parts_weight(mesh: Mesh, shape: tuple[int, ...], grow: float = 0.15, ramp: float = 0.1):
    """HxW float32: 1 on the `PARTS` of `mesh` (each part's hull grown by `grow` eye
    distances), falling to 0 over `ramp` eye distances outside them."""
    inside = np.zeros(shape[:2], np.uint8)
    for part in PARTS:
        hull = cv2.convexHull(np.round(mesh.points[list(part)] * 16).astype(np.int32))
        cv2.fillConvexPoly(inside, hull, 1, lineType=cv2.LINE_8, shift=4)
    distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    eyes = max(mesh.eye_distance, 1.0)
    return np.clip(1.0 - (distance - grow * eyes) / (ramp * eyes), 0.0, 1.0).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Reference:
    """A photo of the person (or an exemplar face) to guide by: the photo, its face's mesh, and
    a name for the record."""

    photo: np.ndarray
    mesh: Mesh
    name: str


def reference(photo: np.ndarray, name: str = "reference") -> Reference:
    """The largest face found with keypoints in `photo` (HxWx3 uint8), with its mesh; ValueError
    naming `name` when it has none or its mesh is unsure of it."""
    found = [f for f in find_faces(photo) if f.keypoints is not None]
    if not found:
        raise ValueError(f"reference {name}: no face with eyes and mouth found in it")
    mesh = find_mesh(photo, found[0])
    if mesh.presence < MIN_PRESENCE:
        raise ValueError(
            f"reference {name}: the face mesh is unsure of its face (presence {mesh.presence:.2f}"
            f" < {MIN_PRESENCE})"
        )
    return Reference(np.ascontiguousarray(photo), mesh, name)


def pose_distance(a: Mesh, b: Mesh) -> float:
    """How differently two faces are posed: the RMS distance between their meshes after the
    similarity transform that fits one onto the other best, in eye distances of the first."""
    from data_pipeline.align import apply, similarity

    fitted = apply(similarity(b.points, a.points), b.points)
    return float(np.sqrt(((fitted - a.points) ** 2).sum(-1).mean()) / max(a.eye_distance, 1e-6))


def closest(references: list[Reference], target: Mesh) -> Reference:
    """The reference whose face is posed most like `target`'s (`pose_distance`)."""
    if not references:
        raise ValueError("no reference to choose from")
    return min(references, key=lambda r: pose_distance(target, r.mesh))
