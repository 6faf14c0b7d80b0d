"""Online training of the diffusion world model for `vidworld dream`: the same stages as `vidworld train`,
on data that grows between calls.

    learner = DiffusionOnline(cfg, run_dir / "world_model", action_spec, meta)
    model = learner.update(replay.episodes(), target_steps=500 * iteration)

The VAE is trained once, on the first data (the random-policy prefill), and then frozen: its latents of old
frames stay valid, so each frame is encoded once. The denoiser, heads and value continue from their own
checkpoint (the shared loop's exact resume) up to `target_steps` optimizer steps in total, sampling windows
from everything collected so far. Everything lives under `root` (stage checkpoints, the VAE folder), so a
killed loop resumes exactly like `vidworld train --resume`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch

from vidworld.atomic import atomic_folder
from vidworld.protocol import ActionSpec
from vidworld.train.episodes import Episodes, WindowSampler
from vidworld.world_models.diffusion.model import DiffusionWorldModel, LatentState
from vidworld.world_models.diffusion.train_dynamics import train_dynamics
from vidworld.world_models.diffusion.train_vae import train_vae
from vidworld.world_models.diffusion.vae import FrameVAE
from vidworld.world_models.folder import load_part


class DiffusionOnline:
    def __init__(self, cfg, root: Path, action_spec: ActionSpec, meta: dict):
        """cfg: the ExperimentConfig (sections model, diffusion, train)."""
        if cfg.diffusion.denoiser.predict_delta:
            raise ValueError("config key 'diffusion.denoiser.predict_delta': must be false for online training "
                             "(its scale is measured once on a fixed dataset)")
        self.cfg, self.root, self.spec, self.meta = cfg, Path(root), action_spec, meta
        # checkpoints only where a call ends (an iteration boundary the loop can resume at), two kept
        self.train_cfg = dataclasses.replace(cfg.train, lr_schedule="constant", checkpoint_every=10**9,
                                             keep_checkpoints=max(2, cfg.train.keep_checkpoints))
        self.vae: FrameVAE | None = None
        self._latents: list[torch.Tensor] = []  # cache: per-episode latents of the episodes already encoded
        self._latent_episodes: Episodes | None = None  # the last update's data, frames replaced by latents

    def _vae(self, episodes: Episodes, progress: bool) -> FrameVAE:
        vae_dir = self.root / "vae"
        if self.vae is None and (vae_dir / "vae_config.json").is_file():
            self.vae = load_part(FrameVAE, vae_dir).eval()
        if self.vae is None:
            frames = episodes.obs
            res = train_vae(frames, frames[:0], self.cfg.diffusion, self.train_cfg, self.root / "stage_vae",
                            resume=True, progress=progress, previous=episodes.previous_obs_index())
            vae = res.vae.eval()
            vae.fit_latent_stats(vae.encode_frames(frames), episodes.previous_obs_index())
            with atomic_folder(vae_dir) as tmp:
                vae.save_pretrained(tmp)
            self.vae = vae
        return self.vae

    def latents(self, episodes: Episodes, progress: bool = False) -> Episodes:
        """The episodes with frames replaced by normalised latents. Each episode is encoded once, on its own
        (so its latents do not depend on what else was in the batch: a resumed loop gets the same floats)."""
        vae = self._vae(episodes, progress)
        for e in range(len(self._latents), len(episodes.lengths)):
            start, n = int(episodes.obs_offsets[e]), int(episodes.lengths[e]) + 1
            self._latents.append(vae.normalize(vae.encode_frames(episodes.obs[start : start + n])))
        return episodes.with_obs(torch.cat(self._latents[: len(episodes.lengths)]))

    def update(self, episodes: Episodes, target_steps: int, progress: bool = False) -> DiffusionWorldModel:
        """Train until `target_steps` dynamics steps in total; returns the current model (EMA denoiser)."""
        latents = self._latent_episodes = self.latents(episodes, progress)
        cfg = dataclasses.replace(self.train_cfg, dynamics_steps=max(1, target_steps))
        dyn = train_dynamics(latents, self.spec.n, self.cfg.model.context_length, self.cfg.diffusion, cfg,
                             self.root / "stage_dynamics", resume=True, progress=progress)
        return DiffusionWorldModel(self.vae, dyn.denoiser, dyn.heads, self.cfg.diffusion.sampler, self.spec,
                                   meta=self.meta, value=dyn.value, history=dyn.history,
                                   static_gate=dyn.static_gate).eval()

    def start_states(self, model: DiffusionWorldModel) -> Callable[[int, torch.Generator], LatentState]:
        """A sampler of imagination start states for the actor-critic: n random real contexts of the last
        update's data (the windows `Replay.start_contexts` draws with the same generator), built from the cached
        latents, so no frame is encoded again (encoding 64 x K frames cost a quarter of an agent update)."""
        if self._latent_episodes is None:
            raise ValueError("start_states needs the latents of an update: call update() first")
        sampler = WindowSampler(self._latent_episodes, model.context_length, pad_starts=True)

        def draw(n: int, generator: torch.Generator) -> LatentState:
            batch = sampler.sample(n, generator)
            return model.init_latents(batch.context, batch.actions[:, :-1])

        return draw
