"""Malformed and unusual inputs through every user-facing command (issue 15, "Measure").

    python bench/bad_inputs.py [--jobs=2] [--only=reconstruct,train] [--keep=/tmp/corpus]

Builds tests/bad_inputs.py's corpus in a temporary folder (photos, masks, configs, detector
checkpoints, inpainter workdirs, datasets, good and broken), makes the small artefacts the
commands need with the commands themselves (a dataset build over the corpus photos, a 1-step
tiny inpainter; an untrained detector checkpoint in process), then runs every case through
launch/build_dataset.py, cache_masks.py, train.py, evaluate.py and reconstruct.py as
subprocesses: folders of photos in one run per command (the build, the mask cache, reconstruct's
folder mode with LaMa's a.jpg + a_mask.png pairs), artefacts one run each.

Counted per command, per case:
    crashes   a traceback in the output, or an exit status the command does not document
    partial   outputs left behind by a refusal (anything new in the output location), or a
              temporary file (.tmp) anywhere in it
    refused   ordinary photos refused: cases the command should accept that it did not
    wrong     other outcomes than expected (a broken input accepted, or refused where a folder
              command should skip it and go on)
The table goes to stdout, every case's row to bench/results/bad_inputs.json; the last line is
`crashes=N`. Goal: zeros everywhere. About 100 subprocesses (84 took about 15 minutes on 2 busy
CPU cores, --jobs=2); --only=COMMAND for one command.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench_common import RESULTS, ROOT, write_json

sys.path.insert(0, str(ROOT / "tests"))
import bad_inputs
from bad_inputs import ACCEPTED, EITHER, REFUSED, SKIPPED

COMMANDS = bad_inputs.COMMANDS
EXIT_STATUS = {  # documented in each launcher's docstring
    "build_dataset": {0, 1},
    "cache_masks": {0, 1},
    "train": {0, 1},
    "evaluate": {0, 1},
    "reconstruct": {0, 1, 2},
}
TEMP_NAME = re.compile(r"\.tmp|\.old-")
SINGLE_PHOTOS = {  # also run alone (besides the folder run): (flags)
    "html_named_jpg": (),
    "bomb_png_100000x100000": (),
    "truncated_jpeg": (),
    "exif_rotated_jpeg": ("--details", "--compare"),
    "cmyk_jpeg": ("--side_by_side",),
    "rgb_16bit_png": (),
    "exif_too_long_png": (),  # as a JPEG (OUTPUT_EXTENSION): written without its EXIF
    "thin_1x2048": (),
}
OUTPUT_EXTENSION = {  # of the single runs' outputs (else the photo's) and the output cases'
    "exif_too_long_png": ".jpg",
    "output_unknown_extension": ".gif",
    "output_webp_too_wide": ".webp",  # with --compare: 18000 px wide, more than WebP holds
}
# The mask cache loads every detector case; reconstruct (35 s a start with torch) a few.
RECONSTRUCT_DETECTORS = {"detector_missing", "detector_random_bytes", "detector_truncated"}
SINGLE_MASKS = {
    "mask_wrong_size": (),
    "mask_html": (),
    "mask_16bit": (),
    "mask_all_white": ("--details",),
    "mask_all_black": (),
}


@dataclasses.dataclass
class Run:
    """One subprocess: a command's flags, the cases it decides and where its outputs go."""

    command: str
    label: str
    argv: list[str]
    cases: list  # bad_inputs.Case
    out: str  # the output location: new content after a refusal is a partial output
    watch: tuple[str, ...] = ()  # existing folders it must not change when it refuses
    rc: int | None = None
    log: str = ""
    seconds: float = 0.0
    before: dict = dataclasses.field(default_factory=dict)


def snapshot(paths) -> dict:
    """path -> (size, mtime) of every file under `paths`."""
    found = {}
    for root in paths:
        for dp, dns, fns in os.walk(root):
            for name in fns + dns:
                p = os.path.join(dp, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                found[p] = (st.st_size, st.st_mtime_ns)
    return found


def temp_files(out: str) -> list[str]:
    """Temporary names in a run's own folder: `out` itself when it ends in "/", else the
    folder that holds it (where a temporary sibling would be)."""
    found = []
    for dp, dns, fns in os.walk(out if out.endswith("/") else os.path.dirname(out)):
        found += [os.path.join(dp, n) for n in fns + dns if TEMP_NAME.search(n)]
    return found


def execute(run: Run, env: dict, timeout: int) -> Run:
    os.makedirs(os.path.dirname(run.out), exist_ok=True)
    run.before = snapshot(run.watch)
    start = time.time()
    try:
        proc = subprocess.run(
            [sys.executable, f"launch/{run.command}.py", *run.argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        run.rc, run.log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        run.rc, run.log = -9, f"timed out after {timeout} s\n{e.stdout or ''}{e.stderr or ''}"
    run.seconds = time.time() - start
    return run


def first_error(log: str) -> str:
    lines = [ln for ln in log.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("error:", "FATAL", "E ")) or "Error" in ln:
            return ln.strip()[:300]
    return (lines[-1] if lines else "").strip()[:300]


# -------------------------------------------------------------------------- the runs


def plan_build(cases, out) -> list[Run]:
    runs = []
    photos = [c for c in cases if c.kind == "photo" and "build_dataset" in c.expect]
    for c in cases:
        if c.kind != "faces" or "build_dataset" not in c.expect:
            continue
        dst = os.path.join(out, "build", c.name, "data")
        argv = [f"--faces={c.path}", f"--out={dst}", "--size=48", "--workers=1"]
        decided = [c] + (photos if c.name == "faces_mixed_folder" else [])
        runs.append(Run("build_dataset", c.name, argv, decided, dst))
    return runs


def plan_train(cases, out, tiny_config) -> list[Run]:
    runs = []
    for c in cases:
        if "train" not in c.expect:
            continue
        work = os.path.join(out, "train", c.name, "work")
        if c.kind == "config":
            argv = [f"--config={c.path}", *c.args, f"--workdir={work}"]
            runs.append(Run("train", c.name, argv, [c], work))
        elif c.kind == "workdir":  # resume: a copy of its own, it may be changed
            if os.path.exists(c.path):
                shutil.copytree(c.path, work, symlinks=True)
            argv = [f"--config={tiny_config}", f"--workdir={work}"]
            runs.append(Run("train", c.name, argv, [c], work + ".new", watch=(work,)))
    return runs


def plan_cache(cases, out, detector, photos_dir) -> list[Run]:
    runs = []
    photos = [c for c in cases if c.kind == "photo" and "cache_masks" in c.expect]
    if detector and photos:
        dst = os.path.join(out, "cache_masks", "photos", "cache")
        argv = [f"--detector={detector}", f"--dataset={photos_dir}", f"--out={dst}"]
        runs.append(Run("cache_masks", "photos", argv, photos, dst))
    for c in cases:
        if "cache_masks" not in c.expect or c.kind == "photo":
            continue
        dst = os.path.join(out, "cache_masks", c.name, "cache")
        det = c.path if c.kind == "detector" else detector
        data = c.path if c.kind == "dataset" else photos_dir
        if det is None:
            continue
        argv = [f"--detector={det}", f"--dataset={data}", f"--out={dst}", *c.args]
        runs.append(Run("cache_masks", c.name, argv, [c], dst))
    return runs


def plan_evaluate(cases, out, workdir, dataset) -> list[Run]:
    runs = []
    for c in cases:
        if "evaluate" not in c.expect:
            continue
        w = c.path if c.kind == "workdir" else workdir
        d = c.path if c.kind == "dataset" else dataset
        if w is None or d is None:
            continue
        dst = os.path.join(out, "evaluate", c.name, "report")
        argv = [f"--workdir={w}", f"--dataset={d}", f"--out={dst}", "--max_examples=4"]
        argv += list(c.args) or ["--split=test"]
        runs.append(Run("evaluate", c.name, argv, [c], dst, watch=(w,)))
    return runs


def plan_reconstruct(cases, out, workdir, detector, corpus) -> list[Run]:
    if workdir is None:
        return []
    runs = []
    lama = os.path.join(corpus, "lama")
    dst = os.path.join(out, "reconstruct", "folder", "out")
    folder_cases = [c for c in cases if c.kind in ("photo", "mask") and "reconstruct" in c.expect]
    argv = [f"--input={lama}", f"--output={dst}", f"--inpainter={workdir}"]
    runs.append(Run("reconstruct", "folder", argv, folder_cases, dst))
    good = next(c for c in cases if c.name == "ok_jpeg")
    good_mask = os.path.splitext(good.lama)[0] + "_mask.png"
    for c in cases:
        if "reconstruct" not in c.expect:
            continue
        where = os.path.join(out, "reconstruct", c.name)
        ext = os.path.splitext(c.path)[1] if c.kind == "photo" else ".png"
        ext = OUTPUT_EXTENSION.get(c.name, ext)
        dst = os.path.join(where, "out" + (ext if ext else ".png"))
        flags = [f"--inpainter={c.path if c.kind == 'workdir' else workdir}"]
        if c.kind == "photo" and c.name in SINGLE_PHOTOS:
            mask = os.path.splitext(c.lama)[0] + "_mask.png"
            flags += [f"--input={c.lama}", f"--mask={mask}", *SINGLE_PHOTOS[c.name]]
        elif c.kind == "photo" and c.name == "directory_named_jpg":
            flags += [f"--input={c.path}", f"--mask={good_mask}"]
            dst = os.path.join(where, "out")
        elif c.kind == "mask" and c.name in SINGLE_MASKS:
            flags += [f"--input={c.photo}", f"--mask={c.path}", *SINGLE_MASKS[c.name]]
        elif c.kind == "workdir":
            flags += [f"--input={good.lama}", f"--mask={good_mask}"]
        elif c.kind == "detector" and c.name in RECONSTRUCT_DETECTORS:
            flags += [f"--input={good.lama}", f"--detector={c.path}", "--device=cpu"]
        elif c.kind == "output" and c.name == "output_is_the_input":
            # a copy of its own beside the outputs' folder, watched: it must stay as it was
            photo = os.path.join(out, "reconstruct", "same_photo", os.path.basename(c.path))
            os.makedirs(os.path.dirname(photo), exist_ok=True)
            shutil.copyfile(c.path, photo)
            shutil.copyfile(good_mask, os.path.join(os.path.dirname(photo), "mask.png"))
            flags += [f"--input={photo}", f"--mask={os.path.dirname(photo)}/mask.png"]
            dst = photo
        elif c.kind == "output":
            own = os.path.splitext(c.path)[0] + "_mask.png"
            flags += [f"--input={c.path}", f"--mask={own if os.path.exists(own) else good_mask}"]
            flags += c.args
            dst = os.path.join(where, "out" + OUTPUT_EXTENSION[c.name])
        elif c.kind == "folder":
            flags += [f"--input={c.path}"]
            dst = os.path.join(where, "out")
        elif c.kind == "flags":
            flags += [f"--input={good.lama}", f"--mask={good_mask}", *c.args]
        else:
            continue
        watch = (c.path,) if c.kind == "workdir" and os.path.isdir(c.path) else ()
        if c.name == "output_is_the_input":
            watch = (os.path.dirname(dst),)
        argv = [*flags, f"--output={dst}"]
        runs.append(Run("reconstruct", c.name, argv, [c], where + "/", watch=watch))
    return runs


# ------------------------------------------------------------------------ the verdicts


def judge(run: Run) -> list[dict]:
    """One row per case the run decides."""
    crash = "Traceback" in run.log or run.rc not in EXIT_STATUS[run.command]
    temps = temp_files(run.out)
    rows = []
    per_file = len(run.cases) > 1 or run.label in ("folder", "photos")
    for case in run.cases:
        if per_file and case.kind in ("photo", "mask"):
            outcome, partial = per_file_outcome(run, case)
        else:
            outcome, partial = whole_outcome(run)
        expected = case.expect[run.command]
        ok_outcome = outcome in (ACCEPTED, REFUSED) if expected == EITHER else outcome == expected
        rows.append(
            dict(
                command=run.command,
                case=case.name,
                kind=case.kind,
                run=run.label,
                expected=expected,
                outcome=outcome,
                rc=run.rc,
                crash=crash,
                partial=partial + temps,
                ordinary_refused=expected == ACCEPTED and outcome != ACCEPTED,
                wrong=not ok_outcome and expected != ACCEPTED,
                message=first_error(run.log) if (crash or outcome != ACCEPTED) else "",
                skip=case.skip,
            )
        )
    return rows


def whole_outcome(run: Run) -> tuple[str, list[str]]:
    """ACCEPTED when it exits 0; REFUSED otherwise, with whatever it left in its output
    location (a folder ending in "/": its content; otherwise the path itself) or changed in
    the folders it must leave alone."""
    if run.rc == 0:
        return ACCEPTED, []
    left = sorted(snapshot([run.out]))
    if not run.out.endswith("/") and os.path.lexists(run.out):
        left = [run.out, *left]
    after = snapshot(run.watch)
    changed = [p for p, v in after.items() if run.before.get(p) != v]
    changed += [p for p in run.before if p not in after]
    return REFUSED, left + changed


def per_file_outcome(run: Run, case) -> tuple[str, list[str]]:
    if run.command == "reconstruct":
        return reconstruct_file(run, case)
    if run.command == "build_dataset":
        return build_file(run, case)
    if run.command == "cache_masks":
        return cache_file(run, case)
    raise ValueError(run.command)


def reconstruct_file(run, case):
    """Folder mode: the photo's output is there (at its upright size) or not at all."""
    from PIL import Image

    photo = case.photo if case.kind == "mask" else case.lama
    dst = os.path.join(run.out, os.path.basename(photo))  # lama/ is flat
    if not os.path.lexists(dst):
        return REFUSED, []
    if case.expect["reconstruct"] != ACCEPTED:
        return ACCEPTED, []
    try:
        with Image.open(dst) as im:
            size = im.size
    except OSError:
        return "an unreadable output", [dst]
    if case.size and size != case.size:
        return f"written at {size[0]}x{size[1]}, not {case.size[0]}x{case.size[1]}", []
    return ACCEPTED, []


def build_file(run, case):
    from data_pipeline import faces

    if run.rc != 0:
        return REFUSED, []
    root = os.path.dirname(case.path)
    index = os.path.join(run.out, "pairs", "index.jsonl")
    lines = pathlib.Path(index).read_text().splitlines() if os.path.exists(index) else []
    used = {json.loads(ln)["face_id"] for ln in lines}
    if faces.face_id(root, case.path) in used:
        return ACCEPTED, []
    return SKIPPED, []


def cache_file(run, case):
    if run.rc != 0:
        return REFUSED, []
    skipped = re.findall(r"^  (.*): [^:]+$", run.log, flags=re.M)
    return (SKIPPED if case.path in skipped else ACCEPTED), []


# --------------------------------------------------------------------------- the bench


def untrained_detector_checkpoint(path) -> str:
    import torch
    from config_files import load_config

    from detector import checkpoint
    from detector import model as model_lib

    config = load_config("detector")
    config.model.backbone = "resnet18"  # loads in a third of resnet50's time; same code paths
    torch.manual_seed(0)
    model = model_lib.build_model(config.model, 64, load_weights=False)
    checkpoint.save(path, model=model, optimizer=None, step=0, config=config, image_size=64)
    return str(path)


def run_all(runs, env, jobs, timeout) -> list[Run]:
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        done = list(pool.map(lambda r: execute(r, env, timeout), runs))
    for r in done:
        print(f"  {r.command:<14}{r.label:<38} rc={r.rc:<4}{r.seconds:>6.1f} s", flush=True)
    return done


def table(rows, commands) -> tuple[str, dict]:
    counts = {}
    for command in commands:
        mine = [r for r in rows if r["command"] == command and not r["skip"]]
        counts[command] = dict(
            cases=len(mine),
            crashes=sum(r["crash"] for r in mine),
            partial=sum(bool(r["partial"]) for r in mine),
            refused=sum(r["ordinary_refused"] for r in mine),
            wrong=sum(r["wrong"] for r in mine),
        )
    head = f"{'command':<15}{'cases':>7}{'crashes':>9}{'partial':>9}{'refused':>9}{'wrong':>7}"
    lines = [head]
    for command, c in counts.items():
        lines.append(
            f"{command:<15}{c['cases']:>7}{c['crashes']:>9}{c['partial']:>9}{c['refused']:>9}"
            f"{c['wrong']:>7}"
        )
    total = {k: sum(c[k] for c in counts.values()) for k in next(iter(counts.values()))}
    lines.append(
        f"{'all':<15}{total['cases']:>7}{total['crashes']:>9}{total['partial']:>9}"
        f"{total['refused']:>9}{total['wrong']:>7}"
    )
    return "\n".join(lines), dict(per_command=counts, total=total)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="subprocesses at once")
    parser.add_argument("--only", default=",".join(COMMANDS), help="commands to run")
    parser.add_argument("--keep", default="", help="build the corpus here and keep it")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per subprocess")
    parser.add_argument("--json", default=str(RESULTS / "bad_inputs.json"))
    args = parser.parse_args()
    commands = [c for c in args.only.split(",") if c]
    start = time.time()
    root = args.keep or tempfile.mkdtemp(prefix="bad_inputs-")
    corpus, out = os.path.join(root, "corpus"), os.path.join(root, "out")
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",  # the corpus is about inputs, not devices; keep runs comparable
        JAX_DISABLE_MOST_OPTIMIZATIONS="1",  # compile in seconds: the 1-step tiny model is all
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(ROOT),
    )
    cases = bad_inputs.build_corpus(corpus)
    print(f"corpus in {corpus}: {len(cases)} cases ({bad_inputs.summary(cases)})", flush=True)

    # Stage 1: the artefacts the other commands need, made by the commands themselves.
    stage1 = []
    if "build_dataset" in commands:
        stage1 += plan_build(cases, out)
    need_workdir = {"train", "evaluate", "reconstruct"} & set(commands)
    tiny = next(c for c in cases if c.name == "config_tiny_ok").path
    control = os.path.join(out, "train", "config_tiny_ok", "work")
    if "train" in commands:
        stage1 += plan_train([c for c in cases if c.kind == "config"], out, tiny)
    elif need_workdir:
        ok = next(c for c in cases if c.name == "config_tiny_ok")
        stage1.append(
            Run("train", ok.name, [f"--config={tiny}", f"--workdir={control}"], [], control)
        )
    need_dataset = "evaluate" in commands and "build_dataset" not in commands
    if need_dataset:
        mixed = next(c for c in cases if c.name == "faces_mixed_folder")
        stage1 += [r for r in plan_build([mixed], out)]
        for r in stage1[-1:]:
            r.cases = []
    print(f"stage 1: {len(stage1)} runs", flush=True)
    done = run_all(stage1, env, args.jobs, args.timeout)
    dataset = os.path.join(out, "build", "faces_mixed_folder", "data")
    dataset = dataset if os.path.isdir(os.path.join(dataset, "tfds")) else None
    workdir = control if os.path.isdir(os.path.join(control, "checkpoints")) else None
    detector = untrained_detector_checkpoint(os.path.join(corpus, "detector_ok.pt"))
    extra = bad_inputs.artefact_cases(corpus, workdir, detector, dataset)
    print(
        f"artefacts: workdir {workdir}, dataset {dataset}; {len(extra)} more cases "
        f"({bad_inputs.summary(extra)})",
        flush=True,
    )
    cases += extra

    # Stage 2: everything else.
    stage2 = []
    if "train" in commands:
        stage2 += plan_train([c for c in extra if c.kind == "workdir"], out, tiny)
    if "cache_masks" in commands:
        stage2 += plan_cache(cases, out, detector, os.path.join(corpus, "photos"))
    if "evaluate" in commands:
        stage2 += plan_evaluate(cases, out, workdir, dataset)
    if "reconstruct" in commands:
        stage2 += plan_reconstruct(cases, out, workdir, detector, corpus)
    print(f"stage 2: {len(stage2)} runs", flush=True)
    done += run_all(stage2, env, args.jobs, args.timeout)

    rows = [row for r in done for row in judge(r)]
    text, counts = table(rows, commands)
    print()
    print(text)
    bad = [
        r
        for r in rows
        if not r["skip"] and (r["crash"] or r["partial"] or r["ordinary_refused"] or r["wrong"])
    ]
    for r in bad:
        print(
            f"  {r['command']}/{r['case']}: expected {r['expected']!r}, got {r['outcome']!r} "
            f"(rc {r['rc']}){' CRASH' if r['crash'] else ''}"
            f"{' partial ' + str(r['partial'][:2]) if r['partial'] else ''} | {r['message']}"
        )
    skipped = sorted({f"{r['case']} ({r['skip']})" for r in rows if r["skip"]})
    if skipped:
        print(f"not counted: {', '.join(skipped)}")
    seconds = round(time.time() - start, 1)
    logs = {f"{r.command}/{r.label}": r.log[-4000:] for r in done if r.rc not in (0, None)}
    write_json(
        args.json,
        dict(
            benchmark="bad_inputs",
            machine=platform.machine(),
            cpus=os.cpu_count(),
            seconds=seconds,
            cases=len(cases),
            runs=len(done),
            counts=counts,
            rows=rows,
            logs_of_failed_runs=logs,
        ),
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(done)} runs, {len(rows)} case-command pairs in {seconds} s")
    print(f"crashes={counts['total']['crashes']}")


if __name__ == "__main__":
    main()
