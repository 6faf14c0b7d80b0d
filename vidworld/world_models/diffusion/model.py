"""DiffusionWorldModel: the world-model protocol over VAE + EDM denoiser + reward/termination heads.

    model = load_world_model("runs/demo/model", sampler_steps=3)  # kind "diffusion"; overrides: see from_pretrained
    state = model.init(frames [B, K, 3, H, W] uint8, actions [B, K-1] long)
    state, out = model.step(state, actions [B], generator=g)     # out.latent [B, c, h, w]
    frames = model.decode(state)                                  # uint8 [B, 3, H, W]
    feats = model.features(state)                                 # [B, 2 * c * h * w]: [z_t, scaled z_t - z_{t-1}]

One folder holds everything: `vae/`, `denoiser/`, `heads/`, optionally `value/`, `history/` and
`static_gate/` (diffusers save_pretrained) and `world_model.json` (kind, format version, sampler, action
space, provenance; the format is `persistence.py`'s). Capabilities (see `vidworld.protocol`): PixelDecoder,
ValuePredictor, LatentObserver, TeacherForcedHeads, Autoencoder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from vidworld.world_models.diffusion.persistence import load_folder, save_folder
from vidworld.world_models.diffusion.sampler import EDMSampler, SamplerConfig
from vidworld.world_models.diffusion.denoiser import ActionDenoiser, from_target
from vidworld.world_models.diffusion.heads import RewardTerminationHead
from vidworld.world_models.diffusion.history import HistoryEncoder
from vidworld.world_models.diffusion.static_gate import StaticGate
from vidworld.world_models.diffusion.vae import FrameVAE, frames_to_unit, unit_to_frames
from vidworld.world_models.diffusion.value import ValueHead
from vidworld.protocol import ActionSpec, StepOut

# What `features(state)` reads: the newest two latents. Two frames carry velocity (one frame of CartPole
# cannot tell which way the pole swings); more add little over the context the denoiser sees. With the VAE's
# measured `motion_scale` they are given as [z_t, (z_t - z_{t-1}) * motion_scale]: the same information, but
# the change, ~5% of a latent's scale on CartPole, at unit scale. As two stacked latents an actor MLP has to
# find velocity in a small difference of two large inputs: the dream config's actor-critic in CartPole's
# exact physics on VAE-latent features reached 292 / 178 / 110 at 10k / 15k / 20k real steps from stacked
# latents and 500 / 500 / 500 from these (bench/agent_exact_physics.py, issue 10). Models saved before motion_scale existed stack.
FEATURE_FRAMES = 2


@dataclass(frozen=True)
class LatentState:
    """latents [B, M, c, h, w] (normalised VAE latents of the last M frames: M = the denoiser's K, or the
    history encoder's L when the model has one); actions [B, M-1] taken at all but the newest of them (the
    newest frame's action is the one `step` receives).

    pixel_correction [B, 3, H, W] (float, in [-1, 1] units, or None): the VAE's reconstruction error on the
    newest REAL frame, x_real - Dec(Enc(x_real)). `decode(state)` adds it to every imagined frame
    ("anchor-relative decoding", see `DiffusionWorldModel.decode`)."""

    latents: Tensor
    actions: Tensor
    pixel_correction: Tensor | None = None


class DiffusionWorldModel(nn.Module):
    """See the module docstring. Batched over B everywhere; no Python loop over the batch."""

    def __init__(
        self,
        vae: FrameVAE,
        denoiser: ActionDenoiser,
        heads: RewardTerminationHead,
        sampler: SamplerConfig | None = None,
        action_spec: ActionSpec | None = None,
        meta: dict[str, Any] | None = None,
        decode_relative: bool = True,
        value: ValueHead | None = None,
        history: HistoryEncoder | None = None,
        static_gate: StaticGate | None = None,
    ):
        super().__init__()
        d = denoiser.config
        needed = {"denoiser": d.history_dim, "heads": heads.config.history_dim}
        if value is not None:
            needed["value"] = value.config.history_dim
        if static_gate is not None:
            needed["static_gate"] = static_gate.config.history_dim
        have = history.config.dim if history is not None else 0
        if any(v != have for v in needed.values()):
            raise ValueError(f"history encoder of dim {have} (0 = none) but the parts expect history dims {needed}")
        if d.latent_channels != vae.config.latent_channels:
            raise ValueError(
                f"denoiser expects {d.latent_channels} latent channels but the VAE makes {vae.config.latent_channels}"
            )
        if heads.config.context_length != d.context_length or heads.config.num_actions != d.num_actions:
            raise ValueError(
                "heads and denoiser disagree: context_length "
                f"{heads.config.context_length} vs {d.context_length}, num_actions {heads.config.num_actions} "
                f"vs {d.num_actions}"
            )
        if static_gate is not None:
            g = static_gate.config
            if (g.context_length, g.num_actions, g.latent_channels) != (d.context_length, d.num_actions,
                                                                        d.latent_channels):
                raise ValueError(
                    "static gate and denoiser disagree: context_length "
                    f"{g.context_length} vs {d.context_length}, num_actions {g.num_actions} vs {d.num_actions}, "
                    f"latent_channels {g.latent_channels} vs {d.latent_channels}"
                )
        self.vae, self.denoiser, self.heads = vae, denoiser, heads
        self.value_head = value
        self.static_gate = static_gate
        self.history = history
        self.sampler_config = sampler or SamplerConfig()
        self.sampler = EDMSampler(self.sampler_config)
        self.action_spec = action_spec or ActionSpec(kind="discrete", n=d.num_actions)
        self.meta = dict(meta or {})
        self.decode_relative = decode_relative
        self.denoiser_context: int = d.context_length  # K: the latents the denoiser and heads see
        self.context_length: int = max(d.context_length, history.config.length if history is not None else 0)
        self.frame_size: int = vae.config.frame_size
        s = vae.latent_size
        self.latent_shape: tuple[int, int, int] = (vae.config.latent_channels, s, s)
        self.feature_frames = min(FEATURE_FRAMES, self.context_length)
        frame_dim = vae.config.latent_channels * s * s
        # with a history encoder: [history vector, newest latent]; without: the newest latents
        self.feature_dim: int = have + frame_dim if history is not None else self.feature_frames * frame_dim

    @property
    def has_value(self) -> bool:
        return self.value_head is not None

    def with_sampler(self, sampler: SamplerConfig) -> DiffusionWorldModel:
        """The same networks (shared, not copied) under other sampler settings, e.g. fewer steps to plan."""
        return self._view(sampler, self.decode_relative)

    def without_pixel_anchor(self) -> DiffusionWorldModel:
        """The same networks (shared) with anchor-relative decoding off: `init`/`observe` skip the VAE decode
        of the newest real frame that only `decode` uses (half the cost of observing one frame at batch 1).
        For consumers that never decode: the actor acting on `features` (rl/policies.py)."""
        return self._view(self.sampler_config, False)

    def _view(self, sampler: SamplerConfig, decode_relative: bool) -> DiffusionWorldModel:
        return DiffusionWorldModel(self.vae, self.denoiser, self.heads, sampler, self.action_spec, self.meta,
                                   decode_relative, self.value_head, self.history, self.static_gate)

    def _history(self, state: LatentState) -> Tensor | None:
        """[B, history_dim] summary of the state's whole memory, or None without a history encoder."""
        if self.history is None:
            return None
        return self.history(state.latents.to(self.device), state.actions.to(self.device)).to(state.latents.dtype)

    @torch.no_grad()
    def value(self, state: LatentState) -> Tensor:
        """Learned value of each state's newest latent -> [B] (the data policy's discounted return);
        planners use it as a terminal value. Raises if the model was trained without a value head."""
        if self.value_head is None:
            raise ValueError("this world model has no value head (trained with value.enabled=false)")
        latent = state.latents[:, -1]
        return self.value_head(latent.to(self.device), self._history(state)).to(latent.dtype)

    def latent(self, state: LatentState) -> Tensor:
        """The newest frame's normalised VAE latent [B, c, h, w]."""
        return state.latents[:, -1]

    @torch.no_grad()
    def features(self, state: LatentState) -> Tensor:
        """[B, feature_dim]: with a history encoder, [its summary of the memory, the newest latent
        flattened]; without, [z_t, (z_t - z_{t-1}) * vae.motion_scale] flattened (FEATURE_FRAMES above), or
        for a VAE without a measured motion scale (older models) the newest two latents stacked, oldest
        first. (A 1-frame context gives just the newest latent.)"""
        if self.history is not None:
            return torch.cat([self._history(state), state.latents[:, -1].flatten(1)], 1).float()
        recent = state.latents[:, -self.feature_frames :].flatten(2).float()  # [B, frames, c*h*w]
        motion = float(self.vae.config.get("motion_scale", 0.0) or 0.0)
        if motion > 0 and recent.shape[1] == 2:
            return torch.cat([recent[:, 1], (recent[:, 1] - recent[:, 0]) * motion], 1)
        return recent.flatten(1)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --- pixels <-> latents ---------------------------------------------------------------------------
    def _check_frames(self, frames: Tensor, name: str) -> None:
        H = self.frame_size
        if frames.dtype != torch.uint8 or frames.shape[-3:] != (3, H, H):
            raise ValueError(f"{name} must be uint8 [..., 3, {H}, {H}], got {frames.dtype} {tuple(frames.shape)}")

    @torch.no_grad()
    def encode(self, frames: Tensor) -> Tensor:
        """uint8 [B, 3, H, W] -> normalised latents [B, c, h, w] in the model's dtype (also under autocast:
        states keep full precision, only the networks run in reduced precision)."""
        self._check_frames(frames, "frames")
        return self.vae.frames_to_latents(frames.to(self.device)).to(self.vae.dtype)

    @torch.no_grad()
    def decode(self, state_or_latents: LatentState | Tensor) -> Tensor:
        """The newest frame of a state, or latents [B, c, h, w] -> uint8 frames [B, 3, H, W].

        Anchor-relative decoding (for states, when `decode_relative`): imagined frame = Dec(z_t) +
        (x_anchor - Dec(z_anchor)), where x_anchor is the newest real context frame. A lossy VAE makes the
        same, systematic error on the static parts of similar frames (background, track); adding back the
        error it makes on the real anchor frame cancels it, so what the decoder contributes is mostly the
        *change* since the anchor — the idea of a video codec's P-frames. With a perfect VAE it is a no-op.
        Bare latents have no anchor and are decoded directly.
        """
        if isinstance(state_or_latents, LatentState):
            x = self.vae.decode_normalized(state_or_latents.latents[:, -1].to(self.device))
            if state_or_latents.pixel_correction is not None:
                x = x + state_or_latents.pixel_correction.to(x.dtype)
            return unit_to_frames(x)
        return self.vae.latents_to_frames(state_or_latents.to(self.device))

    @torch.no_grad()
    def decode_from(self, state: LatentState, latents: Tensor) -> Tensor:
        """Latents [N, c, h, w] imagined from the batch-1 `state` -> uint8 [N, 3, H, W], decoded relative to
        the state's real anchor frame like `decode(state)` (bare latents would show the VAE's raw error)."""
        if state.latents.shape[0] != 1:
            raise ValueError(f"decode_from takes a batch-1 state, got batch {state.latents.shape[0]}")
        n = latents.shape[0]
        correction = None if state.pixel_correction is None else state.pixel_correction.expand(n, -1, -1, -1)
        return self.decode(LatentState(latents=latents.to(self.device)[:, None],
                                       actions=state.actions[:, :0].expand(n, -1), pixel_correction=correction))

    @torch.no_grad()
    def reconstruct(self, frames: Tensor) -> Tensor:
        """VAE round trip uint8 [B, 3, H, W] -> uint8 [B, 3, H, W] (the reconstruction ceiling)."""
        return self.decode(self.encode(frames))

    # --- the protocol ---------------------------------------------------------------------------------
    @torch.no_grad()
    def init(self, context_frames: Tensor, context_actions: Tensor) -> LatentState:
        """frames uint8 [B, K, 3, H, W], actions long [B, K-1] -> LatentState."""
        K = self.context_length
        if context_frames.dim() != 5 or context_frames.shape[1] != K:
            raise ValueError(f"context_frames must be [B, K={K}, 3, H, W], got {tuple(context_frames.shape)}")
        self._check_frames(context_frames, "context_frames")
        B = context_frames.shape[0]
        if context_actions.shape[:2] != (B, K - 1):
            raise ValueError(f"context_actions must be [B={B}, K-1={K - 1}], got {tuple(context_actions.shape)}")
        if K > 1:
            self.action_spec.check(context_actions.reshape(-1))
        z = self.encode(context_frames.flatten(0, 1)).unflatten(0, (B, K))
        correction = None
        if self.decode_relative:
            last = context_frames[:, -1].to(self.device)
            correction = frames_to_unit(last, self.vae.dtype) - self.vae.decode_normalized(z[:, -1])
        return LatentState(latents=z, actions=context_actions.to(self.device).long(), pixel_correction=correction)

    def init_latents(self, latents: Tensor, context_actions: Tensor) -> LatentState:
        """normalised latents [B, K, c, h, w] (e.g. cached `vae.normalize(vae.encode_frames(...))` of real
        frames), actions long [B, K-1] -> LatentState without encoding pixels again. The state has no pixel
        anchor (pixel_correction None): `features`, `step` and `value` are those of `init` on the same frames;
        only `decode` differs by the VAE's reconstruction error on the newest frame."""
        K, B = self.context_length, latents.shape[0]
        if latents.dim() != 5 or latents.shape[1] != K or tuple(latents.shape[2:]) != self.latent_shape:
            raise ValueError(f"latents must be [B, K={K}, {', '.join(map(str, self.latent_shape))}], got "
                             f"{tuple(latents.shape)}")
        if context_actions.shape[:2] != (B, K - 1):
            raise ValueError(f"context_actions must be [B={B}, K-1={K - 1}], got {tuple(context_actions.shape)}")
        if K > 1:
            self.action_spec.check(context_actions.reshape(-1))
        return LatentState(latents=latents.to(self.device), actions=context_actions.to(self.device).long())

    def _actions_window(self, state: LatentState, actions: Tensor) -> Tensor:
        actions = self.action_spec.check(actions.to(self.device), batch=state.latents.shape[0])
        return torch.cat([state.actions, actions[:, None]], dim=1)  # [B, M]

    def _sample(self, ctx: Tensor, acts: Tensor, generator: torch.Generator | None,
                history: Tensor | None = None) -> Tensor:
        B = ctx.shape[0]
        ctx_sigma = ctx.new_full((B,), self.sampler_config.context_noise)
        clean_ctx = ctx
        if self.sampler_config.context_noise > 0:
            noise = torch.randn(ctx.shape, generator=generator, device=ctx.device, dtype=ctx.dtype)
            ctx = ctx + self.sampler_config.context_noise * noise
        x = self.sampler.sample(
            lambda x, s: self.denoiser(x, s, ctx, acts, ctx_sigma, history),
            (B, *self.latent_shape),
            generator=generator,
            device=ctx.device,
            dtype=ctx.dtype,
        )
        return from_target(self.denoiser.config, x, clean_ctx)

    @torch.no_grad()
    def observe(self, state: LatentState, actions: Tensor, frames: Tensor) -> LatentState:
        """The state after a real transition: `actions` [B] taken, real `frames` uint8 [B, 3, H, W] seen. Encodes
        only the new frame (acting at batch 1 costs one VAE encode, not K); the anchor for relative decoding
        becomes the new real frame, as `init` on the extended context would make it."""
        self._check_frames(frames, "frames")
        acts = self._actions_window(state, actions)
        z = self.encode(frames).to(state.latents.dtype)
        correction = None
        if self.decode_relative:
            correction = frames_to_unit(frames.to(self.device), self.vae.dtype) - self.vae.decode_normalized(z)
        return LatentState(latents=torch.cat([state.latents[:, 1:], z[:, None]], 1), actions=acts[:, 1:],
                           pixel_correction=correction)

    @torch.no_grad()
    def predict_heads(self, state: LatentState, actions: Tensor, next_latent: Tensor) -> StepOut:
        """Reward and termination of taking `actions` [B] in `state` and landing in `next_latent` [B, c, h, w]."""
        acts = self._actions_window(state, actions)
        K = self.denoiser_context
        reward, logit = self.heads(state.latents[:, -K:], acts[:, -K:], next_latent.to(self.device),
                                   self._history(state))
        prob = torch.sigmoid(logit)
        return StepOut(latent=next_latent, reward=reward, terminated=prob > 0.5, termination_prob=prob)

    @torch.no_grad()
    def step(
        self, state: LatentState, actions: Tensor, generator: torch.Generator | None = None
    ) -> tuple[LatentState, StepOut]:
        """One imagined transition for the whole batch: one sampler run (num_steps denoiser calls).

        With a static gate, rows where it judges p(unchanged) > its threshold get the newest context latent
        exactly (the sampler still runs for the whole batch: one batched call, then a `torch.where`)."""
        acts = self._actions_window(state, actions)
        K, hist = self.denoiser_context, self._history(state)
        ctx, ctx_acts = state.latents[:, -K:], acts[:, -K:]
        nxt = self._sample(ctx, ctx_acts, generator, hist)
        nxt = nxt.to(state.latents.dtype)  # autocast may hand back bf16; the state stays in its own dtype
        if self.static_gate is not None:
            prob = torch.sigmoid(self.static_gate(ctx, ctx_acts, hist).float())  # [B]
            unchanged = prob > self.static_gate.config.threshold
            nxt = torch.where(unchanged[:, None, None, None], ctx[:, -1], nxt)
        reward, logit = self.heads(ctx, ctx_acts, nxt, hist)
        reward, prob = reward.to(nxt.dtype), torch.sigmoid(logit).to(nxt.dtype)
        new_state = LatentState(
            latents=torch.cat([state.latents[:, 1:], nxt[:, None]], dim=1),
            actions=acts[:, 1:],
            pixel_correction=state.pixel_correction,
        )
        return new_state, StepOut(latent=nxt, reward=reward, terminated=prob > 0.5, termination_prob=prob)

    # --- persistence (vidworld.world_models.diffusion.persistence) -----------------------------------
    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the whole model to folder `path` atomically (a temp folder, then a rename)."""
        save_folder(self, path)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        sampler: SamplerConfig | None = None,
        sampler_steps: int | None = None,
    ) -> DiffusionWorldModel:
        """Load a folder written by `save_pretrained` (use `vidworld.world_models.load_world_model`).

        Load-time overrides: `sampler` replaces the saved sampler settings; `sampler_steps` (>= 1) changes
        only the number of denoiser calls per imagined step (e.g. 1 to plan faster, at a cost: a 1-step
        sampler returns the posterior mean and two samples of it barely differ)."""
        kwargs = load_folder(path, sampler=sampler, sampler_steps=sampler_steps)
        try:
            model = cls(**kwargs)
        except ValueError as e:
            raise ValueError(f"world model folder {path}: {e}") from None
        return model.to(device).eval()
