"""The dataset build as an Apache Beam pipeline: `data_pipeline.build_steps` on any Beam runner.

    python launch/build_dataset.py --faces=DIR --out=OUT --runner=DirectRunner \
        -- --direct_num_workers=2 --direct_running_mode=multi_processing

The output is `data_pipeline.build`'s, example for example: the photos are read, aligned and
cropped where the runner puts them, near-duplicates are removed in path order (one worker holds
every face's 64-bit hash: 8 bytes a photo), the split by person is drawn over every face's id,
person and gender (one worker), and each face's examples come from a generator seeded by their ids.
The TFRecord shards are written by TFDS's own Beam writer (`tfds_builder.write` with Beam options).

Files are written through Beam's `FileSystems`; a local `out` is written under a temporary name and
renamed into place when both pipelines have finished (`data_pipeline.atomic`). Only this module and
`launch/` import apache_beam; the default install has no Beam (see docs/data.md, "Beam").
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import tempfile
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from data_pipeline import (
    atomic,
    build,
    build_steps,
    faces,
    images,
    occluders,
    sample_faces,
    tfds_builder,
)

_META = ".beam"  # per-pipeline results the driver reads back (removed before the rename)


def _write(root: str, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        with FileSystems.create(FileSystems.join(root, rel)) as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)


def _local_copy(path: str) -> str:
    """A worker-local copy of a photo on a remote filesystem (gs://, hdfs://, s3://), so that
    `faces.read_face` reads it as it reads a local file; local paths are read in place."""
    if "://" not in path:
        return path
    fd, local = tempfile.mkstemp(suffix=os.path.splitext(path)[1])
    with os.fdopen(fd, "wb") as dst, FileSystems.open(path) as src:
        shutil.copyfileobj(src, dst)
    return local


class _ReadPhoto(beam.DoFn):
    """(path index, path) -> (index, Face), or (index, path, reason) on the "skipped" output."""

    def __init__(self, labels: build_steps.PhotoLabels, size: int, align: bool):
        self._labels, self._size, self._align = labels, size, align

    def process(self, item):
        index, path = item
        local = _local_copy(path)
        try:
            got = faces.read_face(local, self._size, faces.DEFAULT_MARGIN, self._align)
        finally:
            if local != path:
                os.remove(local)
        if isinstance(got, str):
            yield beam.pvalue.TaggedOutput("skipped", (index, path, got))
            return
        yield (
            index,
            faces.face_from(
                self._labels.root,
                path,
                got,
                self._labels.celeba_genders,
                self._labels.celeba_persons,
            ),
        )


class _Examples(beam.DoFn):
    """Face -> (files, index row, COCO entry) of each of its examples; the occluder library is
    loaded once per worker."""

    def __init__(self, library_dir: str, seed: int, per_face: int):
        self._library_dir, self._seed, self._per_face = library_dir, seed, per_face
        self._library = None

    def setup(self):
        self._library = occluders.OccluderLibrary.load(self._library_dir)

    def process(self, face, plan):
        rank = plan.rank[face.id]
        for ex in build_steps.examples_of(face, rank, self._library, self._seed, self._per_face):
            yield build_steps.record_of(ex, plan.split[face.id], face.person_id)


def _dedup(hashes):
    """(index, face id, hash) of every face -> the kept ids, in path order."""
    return build_steps.kept_faces((fid, int(h)) for _, fid, h in sorted(hashes))


def _finish(records, faces_meta, root):
    """Writes index.jsonl and the COCO JSON; returns the counts for the driver."""
    texts, counts = build_steps.finish([r for _, r, _ in records], [e for _, _, e in records])
    _write(root, texts)
    counts["faces_usable"] = len(faces_meta)
    counts["persons_usable"] = len({p for _, p, _ in faces_meta})
    return json.dumps(counts)


def _skip_log(skipped, duplicates) -> str:
    """The skipped photos in path order as `faces.SkipLog` counts them, as JSON."""
    log = faces.SkipLog()
    rows = [(i, p, r) for i, p, r in skipped] + [(i, p, images.DUPLICATE) for i, p in duplicates]
    for _, path, reason in sorted(rows):
        log.add(path, reason)
    return json.dumps({"counts": dict(log.counts), "examples": dict(log.examples)})


def _faces(p, faces_arg, size, align):
    """(PCollection of usable Faces, PCollection of one skip-log JSON, photo count)."""
    if faces_arg == "sample":
        face_list = sample_faces.load(size, align=align)
        usable = p | "sample faces" >> beam.Create(face_list) | beam.Reshuffle()
        log = p | "no skips" >> beam.Create([_skip_log([], [])])
        return usable, log, len(face_list)
    root, paths = _list_photos(faces_arg)
    # CelebA's attribute and identity files are read from local folders only
    labels = (
        build_steps.PhotoLabels(root, {}, {}) if _remote(root) else build_steps.read_labels(root)
    )
    read = (
        p
        | "photos" >> beam.Create(list(enumerate(paths)))
        | "spread photos" >> beam.Reshuffle()
        | "read faces"
        >> beam.ParDo(_ReadPhoto(labels, size, align)).with_outputs("skipped", main="faces")
    )  # fmt: skip
    found = read.faces
    kept = (
        found
        # as text: Beam's integer coder holds 64 signed bits, a hash has 64 unsigned ones
        | "hashes" >> beam.Map(lambda it: (it[0], it[1].id, str(faces.dhash(it[1].image))))
        | "all hashes" >> beam.combiners.ToList()
        | "near-duplicates" >> beam.Map(_dedup)
    )
    kept_side = beam.pvalue.AsSingleton(kept)
    usable = (
        found
        | "drop duplicates" >> beam.Filter(lambda item, k: item[1].id in k, kept_side)
        | "faces" >> beam.Map(lambda item: item[1])
    )
    duplicates = (
        found
        | "duplicates" >> beam.Filter(lambda item, k: item[1].id not in k, kept_side)
        | "duplicate paths" >> beam.Map(lambda item: (item[0], item[1].source))
        | "all duplicates" >> beam.combiners.ToList()
    )
    log = (
        read.skipped
        | "all skipped" >> beam.combiners.ToList()
        | "skip log" >> beam.Map(_skip_log, beam.pvalue.AsSingleton(duplicates))
    )
    return usable, log, len(paths)


def _examples_pipeline(options, tmp, faces_arg, size, per_face, seed, library_dir, align) -> int:
    """Pipeline 1: photos -> faces/, pairs/, coco/; the driver's results under `tmp/.beam/`."""
    with beam.Pipeline(options=options) as p:
        usable, log, n_inputs = _faces(p, faces_arg, size, align)
        usable | "stage faces" >> beam.Map(lambda f: _write(tmp, build_steps.face_files(f)))
        meta = (
            usable
            | "persons" >> beam.Map(lambda f: (f.id, f.person_id, f.gender))
            | "all persons" >> beam.combiners.ToList()
        )
        plan = meta | "split and schedule" >> beam.Map(
            lambda m: build_steps.plan(
                {fid: p for fid, p, _ in m}, {fid: g for fid, _, g in m}, seed
            )
        )
        records = usable | "examples" >> beam.ParDo(
            _Examples(library_dir, seed, per_face), beam.pvalue.AsSingleton(plan)
        )
        records | "write examples" >> beam.Map(lambda r: _write(tmp, r[0]))
        (
            records
            | "drop pixels" >> beam.Map(lambda r: (None, r[1], r[2]))
            | "all records" >> beam.combiners.ToList()
            | "index and COCO" >> beam.Map(_finish, beam.pvalue.AsSingleton(meta), tmp)
            | "counts" >> beam.Map(lambda c: _write(tmp, {f"{_META}/counts.json": c}))
        )
        log | "skips" >> beam.Map(lambda s: _write(tmp, {f"{_META}/skips.json": s}))
    return n_inputs


def _remote(path: str) -> bool:
    """A path on a filesystem that Beam and TensorFlow reach by URL (gs://, s3://, hdfs://)."""
    return "://" in path


def _list_photos(faces_arg: str) -> tuple[str, list[str]]:
    """(root, photos in path order) of a local or remote face folder."""
    if not _remote(faces_arg):
        return build.list_photos(faces_arg)
    root = faces_arg.rstrip("/")
    found = FileSystems.match([f"{root}/**"])[0].metadata_list
    paths = sorted(m.path for m in found if m.path.lower().endswith(images.IMAGE_EXTENSIONS))
    if not paths:
        raise build.BuildError(f"--faces={faces_arg}: no .jpg/.jpeg/.png/.webp/.bmp files found")
    return root, paths


def _read_json(path: str) -> dict:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def _delete_tree(path: str) -> None:
    """Removes a folder (a prefix of objects on a bucket) if it is there."""
    if _remote(path):
        found = FileSystems.match([f"{path}/**"])[0].metadata_list
        if found:
            FileSystems.delete([m.path for m in found])
    else:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _output(out: str, overwrite: bool):
    """The folder to build into: for a local `out`, a temporary one renamed into place whole
    (`atomic.folder`); for a bucket, which has no folders to rename, `out.partial-<id>/`, whose
    files are moved to `out/` one by one at the end, summary.json last: a reader that finds
    summary.json finds everything."""
    if not _remote(out):
        with atomic.folder(build.prepare_out(out, overwrite)) as tmp:
            yield tmp
        return
    out = out.rstrip("/")
    if FileSystems.match([f"{out}/**"])[0].metadata_list and not overwrite:
        raise build.BuildError(f"--out={out} is not empty; choose a new folder or pass --overwrite")
    tmp = f"{out}.partial-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        _delete_tree(out)
        moved = sorted(m.path for m in FileSystems.match([f"{tmp}/**"])[0].metadata_list)
        summary = [p for p in moved if p.endswith("/summary.json")]
        rest = [p for p in moved if p not in summary]
        for group in (rest, summary):
            FileSystems.rename(group, [out + p[len(tmp) :] for p in group])
    finally:
        _delete_tree(tmp)


def build_dataset(
    faces_arg: str,
    out: str,
    size: int = faces.DEFAULT_SIZE,
    per_face: int = 1,
    seed: int = 0,
    library_dir: str = occluders.LIBRARY_DIR,
    overwrite: bool = False,
    align: bool = True,
    beam_args: list[str] | None = None,
) -> dict:
    """`data_pipeline.build.build_dataset` on the Beam runner that `beam_args` name (pipeline
    options as on a command line, e.g. ["--runner=DirectRunner", "--direct_num_workers=2"]).
    `faces_arg` and `out` may be local (a filesystem the driver and every worker share) or
    URLs (gs://...). Returns the summary; the examples, COCO set and TFDS records equal the
    one-machine build's."""
    build.check_args(size, per_face)
    start = time.time()
    out = out.rstrip("/") if _remote(out) else os.path.abspath(out)
    library = build.load_library(library_dir)
    options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
    with _output(out, overwrite) as tmp:
        n_inputs = _examples_pipeline(options, tmp, faces_arg, size, per_face, seed,
                                      library_dir, align)  # fmt: skip
        counts = _read_json(FileSystems.join(tmp, _META, "counts.json"))
        skipped = _read_json(FileSystems.join(tmp, _META, "skips.json"))
        skips = faces.SkipLog()
        skips.counts.update(skipped["counts"])
        skips.examples.update(skipped["examples"])
        if not counts["faces_usable"]:
            reasons = ", ".join(f"{r}: {n}" for r, n in skips.counts.most_common()) or "none"
            raise build.BuildError(f"no usable face among {n_inputs} photos (skipped: {reasons})")
        n_persons = counts.pop("persons_usable")
        counts.pop("faces_usable")
        build_steps.check_splits(counts["examples_per_split"], counts["faces_used"], n_persons)
        # Pipeline 2: TFDS's Beam writer turns the staged pairs into the TFRecord shards.
        tfds_builder.write(
            posixpath.join(tmp, "pairs"), posixpath.join(tmp, "tfds"), size, beam_options=options
        )
        _delete_tree(posixpath.join(tmp, "tfds", "downloads"))
        _delete_tree(posixpath.join(tmp, _META))
        summary = build.make_summary(counts, skips, library, faces_arg, out, size, per_face, seed,
                                     align, n_inputs, time.time() - start)  # fmt: skip
        summary["runner"] = options.get_all_options()["runner"] or "DirectRunner"
        _write(tmp, {"summary.json": json.dumps(summary, indent=1)})
    return summary
