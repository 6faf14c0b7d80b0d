"""`vidworld rollout`: imagine a video from a context under an action sequence, and write it.

    vidworld rollout --model runs/demo/model --episode 3 --start 10 --out rollout.mp4          # real actions
    vidworld rollout --model runs/demo/model --actions 0,1,1,0,1 --compare-real --out r.gif    # own actions
    vidworld rollout --model M --context-images a.png b.png c.png --policy random --steps 40 --out r.mp4

Context (K = the model's context_length frames, with the K-1 actions between them):
* a dataset episode (default): frames start .. start+K-1 of episode `--episode` (store order) of `--data`
  (default: the dataset recorded in the model);
* `--context-images`: K image files of exactly the model's frame size (`--context-actions`, default all 0).

Actions (taken from the newest context frame on): `--actions "0,1,1"`, `--actions-file` (.npy, or .txt of
ids separated by commas/whitespace), `--policy random --steps N`, or, with a dataset context and none of
those, the episode's own recorded actions after the context (`--steps` caps how many).

The video shows the K context frames, then the imagined ones, upscaled (nearest neighbour) for viewing.
With `--compare-real` the real frames go on the left: the episode's own next frames when its real actions
are used; under other actions, frames replayed in the real env from the recorded state of the last context
frame (classic-control datasets with recorded states; `vidworld.eval.replay.StateReplay`).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vidworld.data.store import EpisodeStore
from vidworld.data.video import write_gif, write_mp4
from vidworld.envs.pixels import PixelEnvConfig
from vidworld.eval.horizon import Imagination, imagine
from vidworld.eval.replay import StateReplay, supports_replay
from vidworld.eval.report import side_by_side_video
from vidworld.paths import check_output_dir
from vidworld.protocol import PixelDecoder, WorldModel
from vidworld.world_models.compat import check_dataset

VIDEO_SUFFIXES = (".mp4", ".gif")
MIN_VIDEO_SIDE = 256  # default upscaling makes frames at least this many pixels wide
MAX_VIDEO_SIDE = 4096  # --upscale beyond this is a typo (every frame is held in memory at that size)


@dataclass(frozen=True)
class Context:
    """frames uint8 [K, 3, S, S], actions long [K-1]; where it came from (episode/start None for images);
    future_actions long [M] / future_frames uint8 [M, 3, S, S]: the episode's real continuation (M may be 0),
    state float32 [d] | None: recorded simulator state at the last context frame."""

    frames: Tensor
    actions: Tensor
    episode: int | None = None
    start: int | None = None
    future_actions: Tensor | None = None
    future_frames: Tensor | None = None
    state: np.ndarray | None = None
    store: EpisodeStore | None = None


# ------------------------------------------------------------------------------------------------ contexts
def episode_context(store: EpisodeStore, episode: int, start: int, context_length: int, frame_size: int) -> Context:
    """The K-frame window at `start` of store episode `episode`, with the episode's real continuation."""
    K = context_length
    if store.frame_shape != (frame_size, frame_size):
        h, w = store.frame_shape
        raise ValueError(f"dataset {store.root} has {h}x{w} frames but the model's frame_size is {frame_size}")
    if not 0 <= episode < len(store):
        raise ValueError(f"--episode {episode} out of range: {store.root} has {len(store)} episodes (0..{len(store) - 1})")
    n = store.episodes[episode].length  # transitions; n+1 frames
    if not 0 <= start <= n + 1 - K:
        raise ValueError(f"--start {start} out of range: episode {episode} has {n + 1} frames, so a context of "
                         f"K={K} frames starts at 0..{n + 1 - K}")
    ep = store.load_episode(episode)
    frames = torch.from_numpy(ep.frames).permute(0, 3, 1, 2)  # [n+1, 3, S, S]
    actions = torch.from_numpy(np.asarray(ep.arrays.actions)).long()
    state = ep.arrays.state[start + K - 1] if ep.arrays.state is not None else None
    return Context(frames[start : start + K].contiguous(), actions[start : start + K - 1], episode, start,
                   actions[start + K - 1 :], frames[start + K :].contiguous(), state, store)


def image_context(paths: list[str], context_actions: str | None, context_length: int, frame_size: int,
                  num_actions: int) -> Context:
    """K image files (RGB or RGBA, exactly S x S) and K-1 context actions (default all 0)."""
    import imageio.v3 as iio

    K, S = context_length, frame_size
    if len(paths) != K:
        raise ValueError(f"--context-images needs exactly K={K} images (the model's context_length), got {len(paths)}")
    frames = []
    for path in paths:
        if Path(path).is_dir():
            raise ValueError(f"--context-images: {path} is a folder; expected a {S}x{S} RGB PNG/JPEG file")
        if not Path(path).is_file():
            raise FileNotFoundError(f"context image not found: {path}")
        try:
            img = np.asarray(iio.imread(path))
        except Exception as e:  # imageio raises OSError/ValueError/format-specific errors for non-images
            raise ValueError(f"{path}: not a readable image ({type(e).__name__}); expected a {S}x{S} RGB "
                             "PNG/JPEG") from None
        if img.ndim == 3 and img.shape[-1] == 4:
            img = img[..., :3]  # drop alpha
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"{path}: expected an 8-bit RGB image, got {img.dtype} {img.shape}")
        if img.shape[:2] != (S, S):
            raise ValueError(f"{path}: image is {img.shape[1]}x{img.shape[0]} (WxH) but the model's frames are "
                             f"{S}x{S}; resize it to {S}x{S}")
        frames.append(torch.from_numpy(img.copy()).permute(2, 0, 1))
    acts = parse_actions(context_actions, "--context-actions") if context_actions else np.zeros(K - 1, np.int64)
    if len(acts) != K - 1:
        raise ValueError(f"--context-actions needs K-1={K - 1} actions (one between each pair of context images), "
                         f"got {len(acts)}")
    check_actions(acts, num_actions, "--context-actions")
    return Context(torch.stack(frames), torch.from_numpy(acts).long())


# ------------------------------------------------------------------------------------------------- actions
def parse_actions(text: str, what: str = "--actions") -> np.ndarray:
    """"0,1, 1 0" -> int64 [n] (commas and/or whitespace separate ids)."""
    tokens = [t for t in text.replace(",", " ").split() if t]
    if not tokens:
        raise ValueError(f"{what}: no actions given (expected integer ids like 0,1,1,0)")
    out = []
    for i, tok in enumerate(tokens):
        try:
            out.append(int(tok))
        except ValueError:
            raise ValueError(f"{what}: {tok!r} (position {i}) is not an integer action id") from None
        if not -(2**63) <= out[-1] < 2**63:  # np.int64 would raise OverflowError
            raise ValueError(f"{what}: {tok!r} (position {i}) is far outside any action range (integer ids "
                             "like 0,1,1,0)")
    return np.asarray(out, np.int64)


def load_actions_file(path: str | Path) -> np.ndarray:
    """.npy (integer array [n]) or .txt (ids separated by commas/whitespace) -> int64 [n]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"actions file not found: {path}")
    if path.suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:  # not an .npy, truncated, or pickled objects
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ValueError(f"{path}: not a readable .npy array ({first}); expected an integer array [n] of "
                             "action ids (numpy.save)") from None
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{path}: expected an integer array [n] of action ids, got {a.dtype} {a.shape}")
        return a.astype(np.int64)
    if path.suffix == ".txt":
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not UTF-8 text (byte {e.start}); expected action ids like 0,1,1,0") from None
        return parse_actions(text, str(path))
    raise ValueError(f"{path}: actions file must be .npy or .txt, got {path.suffix!r}")


def check_actions(actions: np.ndarray, num_actions: int, what: str = "--actions") -> None:
    """Raise ValueError naming the first action outside [0, num_actions)."""
    bad = np.flatnonzero((actions < 0) | (actions >= num_actions))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{what}: action {int(actions[i])} at position {i} is out of range; the model takes "
                         f"ids 0..{num_actions - 1}")


# ------------------------------------------------------------------------------------------------ outputs
def imagined_return(im: Imagination) -> tuple[float, int | None]:
    """(sum of predicted rewards up to and including the first predicted termination (p > 0.5), that step
    1-based or None) of a batch-1 imagination."""
    ends = np.flatnonzero(im.termination_prob[0].numpy() > 0.5)
    end = int(ends[0]) + 1 if ends.size else None
    return float(im.reward[0, :end].sum()), end


def upscale_frames(frames: Tensor, factor: int) -> np.ndarray:
    """uint8 [T, 3, S, S] -> uint8 [T, S*factor, S*factor, 3] (nearest neighbour: pixels stay crisp)."""
    up = frames.repeat_interleave(factor, -2).repeat_interleave(factor, -1)
    return up.permute(0, 2, 3, 1).contiguous().numpy()


def write_rollout(path: Path, frames: Tensor, fps: float, upscale: int, real: Tensor | None = None) -> None:
    """frames uint8 [T, 3, S, S] (and optionally real frames, same shape, shown on the left) -> .mp4 / .gif."""
    if real is not None:
        side_by_side_video(real, frames, path, fps=fps, upscale=upscale)
    elif path.suffix.lower() == ".mp4":
        write_mp4(path, upscale_frames(frames, upscale), fps)
    else:
        write_gif(path, upscale_frames(frames, upscale), fps)


# ---------------------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="world model folder (from `vidworld train`)")
    p.add_argument("--out", required=True, help="output video, .mp4 or .gif")
    p.add_argument("--data", help="dataset folder for the context (default: the one the model was trained on)")
    p.add_argument("--episode", type=int, help="episode index in the dataset (default 0)")
    p.add_argument("--start", type=int, help="first context frame in that episode (default 0)")
    p.add_argument("--context-images", nargs="+", metavar="IMG", help="K image files instead of a dataset episode")
    p.add_argument("--context-actions", help="with --context-images: the K-1 actions between them (default all 0)")
    acts = p.add_mutually_exclusive_group()
    acts.add_argument("--actions", help='comma-separated action ids, e.g. "0,1,1,0"')
    acts.add_argument("--actions-file", help=".npy integer array or .txt of action ids")
    acts.add_argument("--policy", choices=["random"], help="choose actions with a policy (with --steps)")
    p.add_argument("--steps", type=int, help="steps for --policy (default 32); caps the episode's real actions")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler noise and the random policy")
    p.add_argument("--compare-real", action="store_true", help="real frames on the left, imagined on the right")
    p.add_argument("--fps", type=float, help="video frame rate (default: the dataset's, else 15)")
    p.add_argument("--upscale", type=int, help=f"pixel upscaling (default: frames at least {MIN_VIDEO_SIDE} px)")
    p.add_argument("--device", default="cpu", help="torch device for the model")


def _context(args: argparse.Namespace, model: WorldModel) -> Context:
    K, S, n = model.context_length, model.frame_size, model.action_spec.n
    if args.context_images:
        if args.episode is not None or args.start is not None or args.data:
            raise ValueError("give either --context-images or a dataset episode (--data/--episode/--start), not both")
        return image_context(args.context_images, args.context_actions, K, S, n)
    if args.context_actions:
        raise ValueError("--context-actions only applies to --context-images (a dataset episode has its own)")
    data = args.data or model.meta.get("dataset")
    if not data:
        raise ValueError("the model records no dataset: pass --data DIR, or --context-images")
    store = EpisodeStore.open(data)
    check_dataset(model, store)
    return episode_context(store, args.episode or 0, args.start or 0, K, S)


def _actions(args: argparse.Namespace, ctx: Context, num_actions: int) -> tuple[np.ndarray, bool]:
    """(actions int64 [H], whether they are the episode's own recorded actions)."""
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.actions is not None or args.actions_file is not None:
        if args.steps is not None:
            raise ValueError("--steps applies to --policy random or the episode's real actions, not to given actions")
        actions = parse_actions(args.actions) if args.actions is not None else load_actions_file(args.actions_file)
        check_actions(actions, num_actions, "--actions" if args.actions is not None else str(args.actions_file))
        return actions, False
    if args.policy == "random":
        return np.random.default_rng(args.seed).integers(num_actions, size=args.steps or 32), False
    if ctx.future_actions is None:
        raise ValueError("no actions: give --actions, --actions-file or --policy random --steps N")
    real = ctx.future_actions.numpy()[: args.steps]
    if len(real) == 0:
        raise ValueError(f"episode {ctx.episode} has no recorded action after a context starting at {ctx.start}: "
                         "choose an earlier --start, or give --actions")
    check_actions(real, num_actions, f"episode {ctx.episode}'s recorded actions")
    return real, True


def real_frames(ctx: Context, actions: np.ndarray, own: bool, frame_size: int) -> Tensor:
    """uint8 [H, 3, S, S]: what really followed the context under `actions` (see module docstring)."""
    if ctx.store is None:
        raise ValueError("--compare-real needs a dataset episode as context (not --context-images)")
    if own:
        return ctx.future_frames[: len(actions)]
    env_id = ctx.store.env_id or ""
    if ctx.state is None or not supports_replay(env_id):
        raise ValueError(f"--compare-real with your own actions replays the real env from the recorded state; "
                         f"{ctx.store.root} ({env_id or 'unknown env'}) has "
                         f"{'no recorded states' if ctx.state is None else 'an env that cannot be replayed'}. "
                         "Drop --actions/--policy to compare with the episode's real actions")
    collected = (ctx.store.meta.get("collect") or {}).get("env") or {}
    env_cfg = PixelEnvConfig(id=env_id, frame_size=frame_size, frame_skip=int(collected.get("frame_skip", 1)),
                             env_kwargs=dict(collected.get("env_kwargs") or {}))
    replay = StateReplay(env_cfg)
    try:
        return replay(torch.from_numpy(ctx.state)[None], torch.from_numpy(actions)[None])[0]
    finally:
        replay.close()


def parse_device(text: str, what: str = "--device") -> torch.device:
    """A torch device this machine has: ValueError naming `what` for a malformed name or a missing backend
    (torch itself raises RuntimeError / AssertionError from deep inside the first `.to(device)`)."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"{what}: {text!r} is not a torch device; expected e.g. cpu, cuda, cuda:1, mps") from None
    available = {"cpu": True, "meta": False, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise ValueError(f"{what}: {text!r} is not available on this machine; use cpu"
                         + (" or cuda" if available["cuda"] else "") + (" or mps" if available["mps"] else ""))
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{what}: {text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out must end in {' or '.join(VIDEO_SUFFIXES)}, got {out.name!r}")
    if out.is_dir():
        raise ValueError(f"--out: {out} is a folder; expected a video file path ending in .mp4 or .gif")
    if args.upscale is not None and args.upscale < 1:
        raise ValueError(f"--upscale must be >= 1, got {args.upscale}")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise ValueError(f"--fps must be a finite number > 0, got {args.fps}")
    device = parse_device(args.device)
    from vidworld.world_models import load_world_model

    check_output_dir(out.parent, "--out")
    model = load_world_model(args.model, device=device)
    if not isinstance(model, PixelDecoder):
        raise ValueError(f"{args.model}: a {type(model).__name__} does not decode frames; rollout videos need a "
                         "pixel world model")
    if args.upscale is not None and model.frame_size * args.upscale > MAX_VIDEO_SIDE:
        raise ValueError(f"--upscale {args.upscale}: {model.frame_size}-pixel frames would become "
                         f"{model.frame_size * args.upscale} pixels wide; the largest is {MAX_VIDEO_SIDE} "
                         f"(--upscale <= {MAX_VIDEO_SIDE // model.frame_size})")
    ctx = _context(args, model)
    actions, own = _actions(args, ctx, model.action_spec.n)
    real = real_frames(ctx, actions, own, model.frame_size) if args.compare_real else None

    g = torch.Generator(device=model.device).manual_seed(args.seed)
    im = imagine(model, ctx.frames[None], ctx.actions[None], torch.from_numpy(actions)[None], generator=g)
    video = torch.cat([ctx.frames, im.frames[0]])  # [K + H, 3, S, S]
    if real is not None:
        real = torch.cat([ctx.frames, real])
    fps = args.fps or (ctx.store.fps if ctx.store is not None else None) or model.meta.get("fps") or 15
    upscale = args.upscale or max(1, math.ceil(MIN_VIDEO_SIDE / model.frame_size))
    write_rollout(out, video, float(fps), upscale, real)

    ret, end = imagined_return(im)
    source = f"episode {ctx.episode} from frame {ctx.start}" if ctx.episode is not None else "context images"
    print(f"wrote {out}: {len(ctx.frames)} context frames ({source}) + {len(actions)} imagined"
          + (", real frames on the left" if real is not None else ""))
    ended = f"; the model predicts the episode ends at step {end}" if end is not None else ""
    print(f"imagined return: {ret:.3f} (predicted rewards over {end or len(actions)} steps{ended})")
    if own and ctx.store is not None:
        real_rewards = ctx.store.arrays(ctx.episode).rewards[ctx.start + len(ctx.frames) - 1 :][: len(actions)]
        print(f"real return over the same {len(actions)} steps: {float(real_rewards.sum()):.3f}")
    return 0
