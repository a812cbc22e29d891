"""Train and evaluate the occluder detector; one process or many under `torchrun` (DDP).

Workdir layout:
    checkpoints/ckpt_<step>.pt   resumable state (model, optimizer, step, config)
    model_final.pt               the trained model for prediction and the mask cache
    metrics.jsonl                one JSON line per logged step and per evaluation
    eval/step_<step>/            coco_eval.json, coco_eval.md and vis/*.png
"""

import itertools
import json
import logging
import os
import pathlib
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from data_pipeline import faces as faces_lib
from data_pipeline import splits
from detector import checkpoint, data, evaluate, generated
from detector import model as model_lib

log = logging.getLogger(__name__)
SOURCES = ("coco", "generated")


def learning_rate(train_config, step: int) -> float:
    """Linear warm-up from `warmup_factor * lr`, then x0.1 drops."""
    lr = train_config.lr
    if step < train_config.warmup_steps:
        alpha = step / train_config.warmup_steps
        lr *= train_config.warmup_factor * (1 - alpha) + alpha
    return lr * 0.1 ** sum(step >= s for s in train_config.lr_decay_steps)


def _setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when torchrun started several."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def _append_jsonl(path: pathlib.Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _check_source(config) -> None:
    if config.data.source not in SOURCES:
        raise ValueError(f"config.data.source is {config.data.source!r}; expected one of {SOURCES}")


def _resolve_image_size(config, state) -> int:
    """The network input size: the checkpoint's, the config's, or the training images'."""
    if state is not None:
        return int(state["image_size"])
    if config.model.image_size > 0:
        return int(config.model.image_size)
    if config.data.source == "generated":
        return faces_lib.DEFAULT_SIZE
    _, ann_file = data.split_paths(config.data.coco_dir, config.data.train_split)
    return data.image_size_of(ann_file)


def _test_set(config, image_size: int):
    """The evaluation images: the COCO test split, or the fixed generated set on test faces."""
    if config.data.source == "generated":
        return generated.test_set(config, image_size)
    return data.CocoInstances(config.data.coco_dir, config.data.test_split)


def _coco_batches(config, rank: int, world: int, start_step: int):
    """(batches of the COCO train split, epoch after epoch, without end; its image count).

    A run resumed at `start_step` continues mid-epoch with the batch it would have seen next:
    each epoch's order is fixed by (seed, epoch), so the batches before it are skipped.
    """
    train_set = data.CocoInstances(
        config.data.coco_dir, config.data.train_split, config.data.hflip_prob, config.seed
    )
    if len(train_set) == 0:
        raise ValueError(f"{train_set.ann_file} lists no images; expected a training set")
    sampler = torch.utils.data.DistributedSampler(
        train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=True
    )
    batch_size = config.train.batch_size
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=batch_size // world,
        sampler=sampler,
        num_workers=config.data.num_workers,
        collate_fn=data.collate,
        drop_last=True,
    )
    if len(loader) == 0:
        raise ValueError(
            f"{train_set.ann_file} has {len(train_set)} images, fewer than one batch of "
            f"{batch_size}; expected more images or a smaller config.train.batch_size"
        )

    def batches():
        epoch, skip = divmod(start_step, len(loader))
        while True:
            sampler.set_epoch(epoch)
            train_set.epoch = epoch
            yield from itertools.islice(loader, skip, None)
            epoch, skip = epoch + 1, 0

    return batches(), len(train_set)


def _generated_batches(config, image_size: int, rank: int, world: int, start_step: int):
    """(batches of fresh composites from `start_step` on, without end; the train face count)."""
    train_set = generated.train_set(config, image_size)
    sampler = generated.StepSampler(start_step, config.train.batch_size, rank, world)
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=config.train.batch_size // world,
        sampler=sampler,
        num_workers=config.data.num_workers,
        collate_fn=data.collate,
    )
    return iter(loader), len(train_set.faces)


def _record_train_faces(config, image_size: int, workdir: pathlib.Path) -> None:
    """`train_faces.json` in the workdir: the faces the generated composites drew from."""
    faces = generated.split_faces(config.data, image_size, "train")
    source = config.data.faces_dir or "sample"
    splits.write_record(str(workdir), source, {f.id: f.person_id for f in faces})


def _check_finite(loss: torch.Tensor, step: int, world: int) -> None:
    """Raise on every process when the loss is not finite on any: a process that raised alone
    would leave the others waiting forever in the gradient all-reduce."""
    finite = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
    if world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if not finite.item():
        raise FloatingPointError(f"detector loss is not finite at step {step} ({loss.item()} here)")


def _evaluate(config, model, test_set, workdir, step, device) -> dict:
    out_dir = pathlib.Path(workdir) / "eval" / f"step_{step:08d}"
    metrics = evaluate.evaluate_model(
        model,
        test_set,
        out_dir,
        device=device,
        max_images=config.eval.max_images,
        num_vis=config.eval.num_visualizations,
        vis_thresh=config.predict.score_thresh,
    )
    summary = {
        f"{t}/{k}": metrics[t][k] for t in evaluate.IOU_TYPES for k in ("AP", "AP50", "AP75")
    }
    summary["mask_iou/median"] = metrics["mask_iou"]["median"]
    occluder = metrics["occluder"]
    summary.update({f"occluder/segm/{k}": occluder["segm"][k] for k in ("AP", "AP50")})
    summary["found/class"] = 100 * metrics["found"]["rate"]  # at predict.score_thresh
    summary["found/occluder"] = 100 * occluder["found"]["rate"]
    log.info("step %d eval: %s", step, " ".join(f"{k}={v:.4g}" for k, v in summary.items()))
    _append_jsonl(pathlib.Path(workdir) / "metrics.jsonl", {"step": step, "eval": summary})
    return metrics


def evaluate_only(config, workdir) -> dict:
    """COCO-evaluate the newest checkpoint of `workdir` (else model_final.pt) on the test set."""
    workdir = pathlib.Path(workdir)
    path = checkpoint.latest(workdir / "checkpoints") or workdir / checkpoint.FINAL_NAME
    state = checkpoint.load(path)
    stored = checkpoint.config_of(state)
    net = model_lib.build_model(stored.model, int(state["image_size"]), load_weights=False)
    net.load_state_dict(state["model"])
    _check_source(config)
    test_set = _test_set(config, int(state["image_size"]))
    return _evaluate(config, net, test_set, workdir, int(state["step"]), "cpu")


def _train_step(net, optimizer, params, batch, *, lr, clip, step, world, device):
    """One SGD step at `lr` on `batch` (images, targets), the global gradient norm clipped to
    `clip` (0 = not clipped); returns (detached loss terms, detached total loss)."""
    images, targets = batch
    for group in optimizer.param_groups:
        group["lr"] = lr
    images = [im.to(device) for im in images]
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    losses = net(images, targets)
    loss = sum(losses.values())
    _check_finite(loss, step, world)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()
    return {k: v.detach() for k, v in losses.items()}, loss.detach()


def _model_and_optimizer(config, image_size: int, state, device):
    """The model (from `state` when resuming, else built afresh: ImageNet or COCO weights as the
    config says), the parameters that train, their SGD optimizer, and the step to start at."""
    torch.manual_seed(config.seed)  # identical initial weights in every process
    # A resumed run takes its weights from the checkpoint, so nothing is downloaded again.
    net = model_lib.build_model(config.model, image_size, load_weights=state is None).to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    train_cfg = config.train
    optimizer = torch.optim.SGD(
        params, lr=train_cfg.lr, momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay
    )
    if state is None:
        return net, params, optimizer, 0
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return net, params, optimizer, int(state["step"])


def _log_start(config, workdir, bare, image_size, num_train, test_set, world, device) -> None:
    """Rank 0's opening: the train faces on record (generated data), and one line on the run."""
    workdir.mkdir(parents=True, exist_ok=True)
    if config.data.source == "generated":
        _record_train_faces(config, image_size, workdir)
    log.info(
        "training %d params, input %d px, %d train %s / %d test images, %d process(es) on %s",
        model_lib.count_parameters(bare),
        image_size,
        num_train,
        "faces" if config.data.source == "generated" else "images",
        len(test_set),
        world,
        device,
    )


def _metrics_record(step: int, lr: float, loss, losses: dict, world: int, seconds: float) -> dict:
    """One metrics.jsonl line: the loss terms averaged over the processes (every process must
    call this, for the all-reduce), the learning rate and the seconds per step since the last."""
    values = torch.stack([loss, *losses.values()])
    if world > 1:
        dist.all_reduce(values)
        values /= world
    record = {"step": step, "lr": lr, "loss": values[0].item()}
    record.update({k: v.item() for k, v in zip(losses, values[1:], strict=True)})
    record["sec_per_step"] = seconds  # includes any evaluation since the last line
    return record


def train_and_evaluate(config, workdir) -> dict:
    """Train `config` in `workdir`, resuming from its newest checkpoint; evaluate on a cadence.

    Returns {"model": the trained (unwrapped) model, "step": last step, "eval": last metrics or
    None}. Under torchrun each process trains on its share of every global batch; rank 0 alone
    writes checkpoints, logs and evaluations.
    """
    workdir = pathlib.Path(workdir)
    rank, world, device = _setup_distributed()
    train_cfg = config.train
    if train_cfg.batch_size % world:
        raise ValueError(
            f"config.train.batch_size={train_cfg.batch_size} does not divide over {world} "
            "processes; expected a multiple of the process count"
        )
    _check_source(config)

    # Resume order: the workdir's newest checkpoint, else from scratch (or pretrained weights).
    ckpt_dir = workdir / "checkpoints"
    resume_path = checkpoint.latest(ckpt_dir)
    state = checkpoint.load(resume_path) if resume_path else None
    image_size = _resolve_image_size(config, state)
    net, params, optimizer, step = _model_and_optimizer(config, image_size, state, device)
    if state is not None and rank == 0:
        log.info("resumed from %s at step %d", resume_path, step)
    torch.manual_seed(config.seed + 1000 * rank + step)  # RPN/ROI sampling differs per process
    if config.data.source == "generated":
        batches, num_train = _generated_batches(config, image_size, rank, world, step)
    else:
        batches, num_train = _coco_batches(config, rank, world, step)
    test_set = _test_set(config, image_size) if rank == 0 else None  # rank 0 alone evaluates

    if world > 1:
        net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    bare = net.module if world > 1 else net
    if rank == 0:
        _log_start(config, workdir, bare, image_size, num_train, test_set, world, device)

    def save(path, with_optimizer: bool) -> None:
        checkpoint.save(
            path,
            model=bare,
            optimizer=optimizer if with_optimizer else None,
            step=step,
            config=config,
            image_size=image_size,
        )

    last_eval = None
    tick, tick_step = time.perf_counter(), step
    net.train()
    while step < train_cfg.num_steps:
        lr = learning_rate(train_cfg, step)
        losses, loss = _train_step(
            net, optimizer, params, next(batches),
            lr=lr, clip=train_cfg.clip_grad_norm, step=step, world=world, device=device,
        )  # fmt: skip
        step += 1
        last = step == train_cfg.num_steps
        if step % train_cfg.log_every == 0 or last:
            now = time.perf_counter()
            seconds = (now - tick) / (step - tick_step)
            record = _metrics_record(step, lr, loss, losses, world, seconds)
            tick, tick_step = now, step
            if rank == 0:
                _append_jsonl(workdir / "metrics.jsonl", record)
                log.info("step %d loss %.4f lr %.2e", step, record["loss"], lr)
        if rank == 0 and (step % train_cfg.checkpoint_every == 0 or last):
            save(checkpoint.step_path(ckpt_dir, step), with_optimizer=True)
            checkpoint.prune(ckpt_dir, train_cfg.keep_checkpoints)
        if (train_cfg.eval_every and step % train_cfg.eval_every == 0) or last:
            if rank == 0:
                last_eval = _evaluate(config, bare, test_set, workdir, step, device)
            if world > 1:
                dist.barrier()  # the others wait while rank 0 evaluates
            net.train()

    if rank == 0:
        save(workdir / checkpoint.FINAL_NAME, with_optimizer=False)
    if world > 1:
        dist.barrier()
    return {"model": bare, "step": step, "eval": last_eval}
