"""MuZero as a member of the world-model family (kind "muzero", protocol v2; Schrittwieser et al. 2020).

A value-equivalent latent model: it never renders pixels, it predicts only what search needs. Its state is
the latent s; `step` is the dynamics function (next latent, reward), `features` the latent itself, `value`
(the `ValuePredictor` capability) and `policy_logits` the prediction function. It is not a `PixelDecoder`.

Observations (`meta["observation"]`):
* "pixels": `init(frames uint8 [B, K, 3, S, S], actions long [B, K-1])`, as every pixel model;
* "state":  `init(states float [B, K, D], actions long [B, K-1])`: the env's low-dimensional state
  (`info["state"]` of the pixel env, `state` of the episode store). `frame_size` is 0 (no frames) and
  `obs_shape` = (D,). Consumers that hold frames (the gymnasium simulator's dataset contexts, eval-wm)
  therefore cannot feed a state model; the acting policies (rl/policies.py) and the MuZero learner can.

The protocol calls run without autograd (the learner calls the networks directly). MuZero predicts no
episode end: `terminated` is always False (its targets treat the steps after a terminal as absorbing,
value 0 and reward 0, so the values themselves learn the end).

    model = MuZeroWorldModel(nets, ActionSpec(n=2), context_length=1, meta={"observation": "state", ...})
    model.save_pretrained("runs/mz/model")          # load_world_model("runs/mz/model") gives it back
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from vidworld.atomic import atomic_folder
from vidworld.protocol import ActionSpec, StepOut
from vidworld.world_models.folder import read_model_info
from vidworld.world_models.muzero.networks import MuZeroNetworks
from vidworld.world_models.muzero.support import support_to_scalar

KIND = "muzero"
FORMAT_VERSION = 1
WEIGHTS = "networks.safetensors"


@dataclass(frozen=True)
class MuZeroState:
    """latent: float [B, L], min-max scaled to [0, 1]."""

    latent: Tensor


class MuZeroWorldModel:
    """MuZero's networks behind protocol v2 (see module docstring)."""

    has_value = True

    def __init__(self, nets: MuZeroNetworks, action_spec: ActionSpec, context_length: int, meta: dict | None = None):
        if action_spec.kind != "discrete" or action_spec.n != nets.A:
            raise ValueError(f"action_spec must be discrete with n={nets.A} (the networks' actions), got {action_spec}")
        if context_length != nets.K:
            raise ValueError(f"context_length {context_length} differs from the networks' K={nets.K}")
        self.nets = nets
        self.action_spec = action_spec
        self.context_length = context_length
        self.meta = {**(meta or {}), "observation": nets.observation}
        self.observation = nets.observation
        self.obs_shape = nets.obs_shape
        self.frame_size = nets.obs_shape[-1] if nets.observation == "pixels" else 0
        self.feature_dim = nets.latent_dim
        self._last: tuple | None = None  # predict's cache: (latent, weights version, logits, value)

    @property
    def device(self) -> torch.device:
        return next(self.nets.parameters()).device

    def eval(self) -> MuZeroWorldModel:
        self.nets.eval()
        return self

    # ------------------------------------------------------------------ protocol
    def check_context(self, obs: Tensor, actions: Tensor) -> None:
        """ValueError naming the expected shapes/dtypes unless (obs, actions) is a valid batch of contexts."""
        K = self.context_length
        if self.observation == "pixels":
            want = f"uint8 [B, K={K}, {', '.join(map(str, self.obs_shape))}]"
            ok = obs.dtype == torch.uint8 and obs.dim() == 5 and tuple(obs.shape[1:]) == (K, *self.obs_shape)
        else:
            want = f"float [B, K={K}, D={self.obs_shape[0]}] (meta observation 'state')"
            ok = obs.dtype.is_floating_point and obs.dim() == 3 and tuple(obs.shape[1:]) == (K, *self.obs_shape)
        if not ok:
            raise ValueError(f"context observations must be {want}, got {obs.dtype} {tuple(obs.shape)}")
        if actions.dtype.is_floating_point or tuple(actions.shape) != (obs.shape[0], K - 1):
            raise ValueError(f"context_actions must be long [B={obs.shape[0]}, K-1={K - 1}], got {actions.dtype} "
                             f"{tuple(actions.shape)}")
        if actions.numel() and (int(actions.min()) < 0 or int(actions.max()) >= self.action_spec.n):
            raise ValueError(f"context_actions must be ids in [0, {self.action_spec.n})")

    @torch.no_grad()
    def init(self, context_frames: Tensor, context_actions: Tensor) -> MuZeroState:
        """Observations [B, K, ...] (pixels uint8 [B, K, 3, S, S] or states float [B, K, D]) and actions long
        [B, K-1] -> the representation's latent."""
        self.check_context(context_frames, context_actions)
        return MuZeroState(self.nets.represent(context_frames, context_actions))

    @torch.no_grad()
    def step(self, state: MuZeroState, actions: Tensor,
             generator: torch.Generator | None = None) -> tuple[MuZeroState, StepOut]:
        """actions long [B] -> (next latent, StepOut(latent [B, L], reward [B], never terminated)).
        Deterministic: `generator` is accepted and unused."""
        B = state.latent.shape[0]
        actions = self.action_spec.check(actions, batch=B).to(state.latent.device)
        latent, reward_logits = self.nets.dynamics(state.latent, actions)
        reward = support_to_scalar(reward_logits, self.nets.reward_support)
        zeros = torch.zeros(B, device=latent.device)
        return MuZeroState(latent), StepOut(latent=latent, reward=reward, terminated=zeros.bool(),
                                            termination_prob=zeros)

    def features(self, state: MuZeroState) -> Tensor:
        """[B, L] the latent itself."""
        return state.latent.float()

    @torch.no_grad()
    def predict(self, state: MuZeroState) -> tuple[Tensor, Tensor]:
        """(policy logits [B, A], scalar value [B]) of the prediction function. The last result is kept for
        the same latent tensor: MCTS asks `value` and `policy_logits` of every node one after the other."""
        version = self.nets.value_out.weight._version  # bumped by every in-place optimizer step
        if self._last is not None and self._last[0] is state.latent and self._last[1] == version:
            return self._last[2], self._last[3]
        logits, value_logits = self.nets.predict(state.latent)
        value = support_to_scalar(value_logits, self.nets.value_support)
        self._last = (state.latent, version, logits, value)
        return logits, value

    def value(self, state: MuZeroState) -> Tensor:
        """[B] the prediction function's value (the `ValuePredictor` capability)."""
        return self.predict(state)[1]

    def policy_logits(self, state: MuZeroState) -> Tensor:
        """[B, A] the prediction function's policy logits (the MCTS prior)."""
        return self.predict(state)[0]

    # ------------------------------------------------------------------ folder
    def save_pretrained(self, path: str | os.PathLike) -> None:
        with atomic_folder(path) as tmp:
            info = {"format_version": FORMAT_VERSION, "kind": KIND, "context_length": self.context_length,
                    "frame_size": self.frame_size, "action_spec": dataclasses.asdict(self.action_spec),
                    "networks": self.nets.config, "meta": self.meta}
            (tmp / "world_model.json").write_text(json.dumps(info, indent=2))
            save_file({k: v.detach().cpu().contiguous() for k, v in self.nets.state_dict().items()}, tmp / WEIGHTS)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> MuZeroWorldModel:
        path = Path(path)
        info = read_model_info(path, KIND, FORMAT_VERSION)
        try:
            cfg = dict(info["networks"])
            cfg["obs_shape"], cfg["channels"] = tuple(cfg["obs_shape"]), tuple(cfg["channels"])
            nets = MuZeroNetworks(**cfg)
            spec = ActionSpec(**{**info["action_spec"], "shape": tuple(info["action_spec"].get("shape", ()))})
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path / 'world_model.json'}: missing or malformed field ({e}); expected networks "
                             "(observation, obs_shape, context_length, ...), action_spec") from None
        try:
            nets.load_state_dict(load_file(path / WEIGHTS))
        except Exception as e:  # missing, truncated or foreign weights
            raise ValueError(f"{path / WEIGHTS}: cannot load MuZero weights ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
        return cls(nets.to(device).eval(), spec, nets.K, info.get("meta", {}))


def build_model(net_cfg, obs_shape: tuple[int, ...], context_length: int, action_spec: ActionSpec,
                meta: dict | None = None, consistency: bool = False) -> MuZeroWorldModel:
    """A fresh model from `MuZeroNetConfig` (the caller seeds torch for its initial weights); `consistency`
    adds the projection heads of the learner's consistency loss (P = net_cfg.hidden). In eval mode, as a loaded
    model: the protocol calls are inference (BatchNorm on running statistics); the learner switches to training
    mode for its updates only."""
    nets = MuZeroNetworks(net_cfg.observation, tuple(obs_shape), context_length, action_spec.n, net_cfg.latent_dim,
                          net_cfg.hidden, net_cfg.layers, tuple(net_cfg.channels), net_cfg.value_support,
                          net_cfg.reward_support, net_cfg.hidden if consistency else 0, net_cfg.encoder_norm)
    return MuZeroWorldModel(nets.eval(), action_spec, context_length, meta)
