"""Online training of the RSSM world model for `vidworld dream`: the same loss and loop as `vidworld train`
(train.py `fit_rssm`), on data that grows between calls.

    learner = RSSMOnline(cfg, run_dir / "world_model", action_spec, meta)
    model = learner.update(replay.episodes(), target_steps=500 * iteration)

Every call continues from the stage's own checkpoint (the shared loop's exact resume: weights, optimizer,
batch generator) up to `target_steps` optimizer steps in total, sampling `rssm.seq_len`-frame windows
uniformly from every episode collected so far (DreamerV3 replays its whole buffer the same way). The
learning rate is constant after warm-up (the total grows with the data) and a checkpoint is written only
where a call ends, an iteration boundary the loop can resume at; so a killed loop resumed with `--resume`
rebuilds exactly the model an uninterrupted one had. `rssm.train_steps` is not used here: the loop's
`dream.model_updates` per iteration sets the budget.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vidworld.protocol import ActionSpec
from vidworld.train.episodes import Episodes
from vidworld.world_models.rssm.model import RSSMWorldModel
from vidworld.world_models.rssm.train import episode_returns, fit_rssm


class RSSMOnline:
    def __init__(self, cfg, root: Path, action_spec: ActionSpec, meta: dict):
        """cfg: the ExperimentConfig (sections model, rssm, train); root: where the stage checkpoints live."""
        if action_spec.kind != "discrete" or action_spec.n < 1:
            raise ValueError(f"the RSSM learns discrete actions; got action spec {action_spec}")
        self.cfg, self.root, self.spec, self.meta = cfg, Path(root), action_spec, meta
        # checkpoints only where a call ends (an iteration boundary the loop can resume at), two kept
        self.train_cfg = dataclasses.replace(cfg.train, lr_schedule="constant", checkpoint_every=10**9,
                                             keep_checkpoints=max(2, cfg.train.keep_checkpoints))

    def update(self, episodes: Episodes, target_steps: int, progress: bool = False) -> RSSMWorldModel:
        """Train until `target_steps` optimizer steps in total on `episodes` (frames uint8 [N, 3, S, S]);
        returns the current model (eval mode; its parameters keep requires_grad, so an actor can
        backpropagate through `imagine_step`)."""
        rcfg = self.cfg.rssm
        returns = episode_returns(episodes, rcfg.value_discount) if rcfg.value_discount > 0 else None
        trained, _ = fit_rssm(episodes, rcfg, self.train_cfg, self.spec.n, self.root / "stage_rssm",
                              max(1, target_steps), returns, resume=True, progress=progress)
        model = RSSMWorldModel(trained.networks, self.spec, self.cfg.model.context_length, meta=self.meta)
        return model.eval()
