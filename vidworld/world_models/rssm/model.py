"""RSSMWorldModel: the world-model protocol (v2) over a DreamerV3 RSSM (kind "rssm").

    model = load_world_model("runs/rssm/model")
    state = model.init(frames uint8 [B, K, 3, S, S], actions long [B, K-1])   # posterior filter (mode)
    state, out = model.step(state, actions [B], generator=g)                 # prior sample from g
    feats = model.features(state)                                            # [B, D + S*C] = [h, z]
    frames = model.decode(state)                                             # uint8 [B, 3, S, S]

One folder holds everything: `networks/` (RSSMNetworks, diffusers save_pretrained + safetensors) and
`world_model.json` (kind, format version, action space, context length, provenance). Capabilities (see
`vidworld.protocol`): PixelDecoder (`StepOut.latent` is the new state's features, which the decoder
reads, so `decode_from` decodes them directly), LatentObserver (the latent is the features),
ValuePredictor (when trained with `rssm.value_discount` > 0), Filtering (`observe`: DreamerV3's posterior
update after a real step, one frame encoded and one recurrent step, for acting in the real env).

`init` and `observe` (the exact relation, tested in tests/world_models/test_rssm.py): `init` filters its K
frames starting from the initial state; `observe` continues that filter by one real step, so

    observe(init(frames[:, :K], actions[:, :K-1]), actions[:, K-1], frames[:, K])
        == the same networks with context_length K+1: init(frames[:, :K+1], actions[:, :K])

(up to float rounding). It is a recurrent filter over the whole history, as DreamerV3 acts: NOT `init` on
the K-frame window shifted by one step (which would forget the oldest frame and restart from the initial
state, the diffusion model's window semantics).

Differentiable imagination (for a learner that backpropagates through the dynamics, DreamerV1/V2-style):
`imagine_step(state, action_probs, generator)` takes float actions [B, A] (one-hot, or an actor's
straight-through sample) and keeps the autograd graph: gradients reach the actions, the state and the
networks through the straight-through categorical samples. `step(..., differentiable=True)` does the same
from integer actions. `step` by default runs under no_grad.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidworld.atomic import atomic_folder
from vidworld.protocol import ActionSpec, StepOut
from vidworld.world_models.folder import load_part, read_model_info
from vidworld.world_models.rssm.losses import twohot_symlog_mean
from vidworld.world_models.rssm.networks import RSSMNetworks

KIND = "rssm"
FORMAT_VERSION = 1
PART = "networks"


@dataclass(frozen=True)
class RSSMState:
    """deter [B, D]: the GRU state h; stoch [B, S*C]: the categorical state z, one-hot per categorical."""

    deter: Tensor
    stoch: Tensor


class RSSMWorldModel(nn.Module):
    """See the module docstring. Batched over B everywhere; the only Python loop is over context frames."""

    def __init__(self, networks: RSSMNetworks, action_spec: ActionSpec | None = None, context_length: int = 8,
                 meta: dict[str, Any] | None = None):
        super().__init__()
        c = networks.config
        self.networks = networks
        self.action_spec = action_spec or ActionSpec(kind="discrete", n=c.num_actions)
        if self.action_spec.kind != "discrete" or self.action_spec.n != c.num_actions:
            raise ValueError(f"action_spec {self.action_spec} does not match the networks' {c.num_actions} "
                             "discrete actions")
        if context_length < 1:
            raise ValueError(f"context_length must be >= 1, got {context_length}")
        self.context_length = int(context_length)
        self.frame_size: int = c.frame_size
        self.feature_dim: int = networks.feature_dim
        self.latent_shape: tuple[int, ...] = (networks.feature_dim,)
        self.meta = dict(meta or {})

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def has_value(self) -> bool:
        return self.networks.has_value

    @torch.no_grad()
    def value(self, state: RSSMState) -> Tensor:
        """The data policy's discounted return from each state -> float [B] (planners bootstrap with it);
        raises ValueError for a model trained without a value head."""
        feat = torch.cat([state.deter, state.stoch], -1).to(self.networks.dtype)
        return twohot_symlog_mean(self.networks.value_logits(feat), self.networks.bins).float()

    # --- state views ----------------------------------------------------------------------------------
    def features(self, state: RSSMState) -> Tensor:
        """[B, D + S*C]: [deterministic h, flattened one-hot z] (what DreamerV3's actor and critic read)."""
        return torch.cat([state.deter, state.stoch], -1).float()

    def latent(self, state: RSSMState) -> Tensor:
        """The newest observation's latent: the features [B, F]."""
        return self.features(state)

    @torch.no_grad()
    def decode(self, state_or_features: RSSMState | Tensor) -> Tensor:
        """A state, or features [B, F] (StepOut.latent) -> uint8 frames [B, 3, S, S] (the decoder's mean)."""
        feat = state_or_features
        if isinstance(feat, RSSMState):
            feat = self.features(feat)
        if feat.dim() != 2 or feat.shape[1] != self.feature_dim:
            raise ValueError(f"features must be [N, {self.feature_dim}], got {tuple(feat.shape)}")
        x = self.networks.decode(feat.to(self.device, self.networks.dtype))
        return ((x.float() + 0.5) * 255.0).clamp(0, 255).round().to(torch.uint8)

    @torch.no_grad()
    def decode_from(self, state: RSSMState, latents: Tensor) -> Tensor:
        """Features [N, F] imagined from `state` -> uint8 [N, 3, S, S]. RSSM features are absolute (no
        anchor frame to decode relative to), so this is `decode(latents)`."""
        return self.decode(latents)

    # --- the protocol ---------------------------------------------------------------------------------
    def _onehot(self, actions: Tensor, batch: int | None = None) -> Tensor:
        ids = self.action_spec.check(actions.to(self.device), batch=batch)
        return F.one_hot(ids, self.action_spec.n).to(self.networks.dtype)

    @torch.no_grad()
    def init(self, context_frames: Tensor, context_actions: Tensor) -> RSSMState:
        """frames uint8 [B, K, 3, S, S], actions long [B, K-1] -> the posterior state after the last frame.

        The first frame starts from the initial state (as an episode start does in training, where every
        sampled window also starts from it); later frames use the posterior's mode, so `init` is
        deterministic and needs no generator."""
        K, S = self.context_length, self.frame_size
        frames, actions = context_frames, context_actions
        if frames.dtype != torch.uint8 or frames.dim() != 5 or frames.shape[2:] != (3, S, S):
            raise ValueError(f"context_frames must be uint8 [B, K={K}, 3, {S}, {S}], got {frames.dtype} "
                             f"{tuple(frames.shape)}")
        B = frames.shape[0]
        if frames.shape[1] != K:
            raise ValueError(f"expected K={K} context frames, got {frames.shape[1]}")
        if tuple(actions.shape) != (B, K - 1):
            raise ValueError(f"context_actions must have shape [B={B}, K-1={K - 1}], "
                             f"got {tuple(actions.shape)}")
        prev = torch.zeros(B, K, dtype=torch.long, device=self.device)
        if K > 1:
            prev[:, 1:] = self.action_spec.check(actions.reshape(-1).to(self.device)).view(B, K - 1)
        is_first = torch.zeros(B, K, dtype=torch.bool, device=self.device)
        is_first[:, 0] = True
        prev_onehot = F.one_hot(prev, self.action_spec.n).to(self.networks.dtype)
        deter, stoch, _ = self.networks.observe(frames.to(self.device), prev_onehot, is_first)
        dtype = self.networks.dtype  # states stay in full precision under autocast (only networks drop)
        return RSSMState(deter=deter[:, -1].to(dtype), stoch=stoch[:, -1].to(dtype))

    @torch.no_grad()
    def observe(self, state: RSSMState, actions: Tensor, frames: Tensor) -> RSSMState:
        """`actions` long [B] were taken in `state` and the real env showed `frames` uint8 [B, 3, S, S] -> the
        posterior state (mode, deterministic like `init`): the GRU steps on the previous state and action,
        the posterior reads the new frame's embedding. See the module docstring for the relation to `init`."""
        B, S = state.deter.shape[0], self.frame_size
        if frames.dtype != torch.uint8 or tuple(frames.shape) != (B, 3, S, S):
            raise ValueError(f"frames must be uint8 [B={B}, 3, {S}, {S}], got {frames.dtype} "
                             f"{tuple(frames.shape)}")
        onehot = self._onehot(actions, batch=B)
        net, dtype = self.networks, self.networks.dtype
        embed = net.embed(frames.to(self.device))
        deter, stoch, _ = net.observe_step(state.deter.to(dtype), state.stoch.to(dtype), onehot, embed)
        return RSSMState(deter=deter.to(dtype), stoch=stoch.to(dtype))

    def imagine_step(self, state: RSSMState, action_probs: Tensor, generator: torch.Generator | None = None
                     ) -> tuple[RSSMState, StepOut]:
        """Differentiable prior step: float actions [B, A] -> (state, StepOut), keeping the autograd graph
        (straight-through categorical samples). The noise is drawn from `generator`."""
        B = state.deter.shape[0]
        if action_probs.shape != (B, self.action_spec.n) or not action_probs.dtype.is_floating_point:
            raise ValueError(f"action_probs must be float [B={B}, {self.action_spec.n}], got "
                             f"{action_probs.dtype} {tuple(action_probs.shape)}")
        net = self.networks
        d = state.deter
        uniform = torch.rand(B, net.stoch, generator=generator, device=d.device, dtype=d.dtype)
        deter, stoch, _ = net.imagine_step(d, state.stoch, action_probs.to(d.dtype), uniform)
        deter, stoch = deter.to(state.deter.dtype), stoch.to(state.stoch.dtype)  # autocast may hand back bf16
        new = RSSMState(deter=deter, stoch=stoch)
        feat = torch.cat([deter, stoch], -1)
        reward, p_term = net.predict(feat)
        return new, StepOut(latent=feat.float(), reward=reward.float(), terminated=p_term > 0.5,
                            termination_prob=p_term.float())

    def step(self, state: RSSMState, actions: Tensor, generator: torch.Generator | None = None,
             differentiable: bool = False) -> tuple[RSSMState, StepOut]:
        """actions long [B] -> (next state, StepOut): one prior step, its categorical sample drawn from
        `generator`; reward = symexp of the two-hot expectation, termination = 1 - P(continue)."""
        onehot = self._onehot(actions, batch=state.deter.shape[0])
        with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
            return self.imagine_step(state, onehot, generator)

    # --- persistence ----------------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the whole model to folder `path` atomically (a temp folder, then a rename)."""
        with atomic_folder(path) as tmp:
            self.networks.save_pretrained(tmp / PART, safe_serialization=True)
            info = {"format_version": FORMAT_VERSION, "kind": KIND, "context_length": self.context_length,
                    "action_spec": dataclasses.asdict(self.action_spec), "meta": self.meta}
            (tmp / "world_model.json").write_text(json.dumps(info, indent=2))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> RSSMWorldModel:
        """Load a folder written by `save_pretrained` (use `vidworld.world_models.load_world_model`)."""
        path = Path(path)
        info = read_model_info(path, KIND, FORMAT_VERSION)
        networks = load_part(RSSMNetworks, path / PART)
        try:
            spec = ActionSpec(**{**info["action_spec"], "shape": tuple(info["action_spec"].get("shape", ()))})
            context_length = int(info["context_length"])
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(f"{path / 'world_model.json'}: missing or malformed field "
                             f"({type(e).__name__}: {e}); expected action_spec, context_length") from None
        try:
            model = cls(networks, spec, context_length, info.get("meta", {}))
        except ValueError as e:
            raise ValueError(f"world model folder {path}: {e}") from None
        return model.to(device).eval()
