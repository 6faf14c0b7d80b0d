"""MuZero's three functions (Schrittwieser et al. 2020), as one torch module:

    representation h:  observation window [B, K, ...] + past actions [B, K-1] -> latent s  [B, L]
    dynamics g:        (s [B, L], action [B])  -> (next latent [B, L], reward logits [B, 2R+1])
    prediction f:      s [B, L]               -> (policy logits [B, A], value logits [B, 2V+1])

Latents are min-max scaled to [0, 1] per sample after h and after g (MuZero Appendix G, muzero-general's
`normalize_encoded_state`), which keeps the recurrent latent bounded however long the unroll. The state
encoder is an MLP on the flattened K states and one-hot actions; the pixel encoder a strided conv net on the
K frames stacked on channels with the K-1 actions as constant planes (MuZero's Atari input: frames plus
action planes), flattened into the latent. Its convs are followed by BatchNorm (`encoder_norm="batch"`), as the
conv representations of MuZero, muzero-general and EfficientZero: with GroupNorm over the whole map (one
group, "group", the earlier choice, kept so old folders load) the CartPole representation collapsed to a
constant within 250 updates even when trained supervised on value targets (latent std across states 0.052 ->
0.0001, value constant), where BatchNorm learned them (held-out correlation 0.51 after 500 updates, 0.61 after
1500; bench/muzero_representation.py), and MuZero self-play from pixels never left the one-action policy
(return 9). Output layers start at zero (value 0, uniform policy), as
muzero-general and EfficientZero initialise them.

With `projection_dim` > 0 (the learner's consistency loss is on) the module also has EfficientZero's SimSiam
heads (Ye et al. 2021 after Chen & He 2021), used only by the learner:

    projection:  s [B, L] -> Linear-BN-ReLU-Linear-BN -> [B, P]
    predictor:   [B, P]   -> Linear-BN-ReLU-Linear    -> [B, P]   (online branch only)

They keep PyTorch's default init (a zero output would make the cosine undefined). They are created after
every other layer and only when asked for, so a network without them draws the same initial weights as before
and old folders (whose config has no `projection_dim`) still load.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidworld.world_models.muzero.config import ENCODER_NORMS


def mlp(inp: int, hidden: int, out: int, layers: int) -> nn.Sequential:
    """`layers` hidden layers of Linear + LayerNorm + ELU, then a Linear to `out`."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.ELU()]
    mods.append(nn.Linear(hidden if layers else inp, out))
    return nn.Sequential(*mods)


def scale_latent(s: Tensor) -> Tensor:
    """Min-max scale each row of [B, L] to [0, 1] (a constant row becomes 0)."""
    lo, hi = s.min(-1, keepdim=True).values, s.max(-1, keepdim=True).values
    return (s - lo) / (hi - lo).clamp_min(1e-5)


class MuZeroNetworks(nn.Module):
    def __init__(self, observation: str, obs_shape: tuple[int, ...], context_length: int, num_actions: int,
                 latent_dim: int, hidden: int, layers: int, channels: tuple[int, ...], value_support: int,
                 reward_support: int, projection_dim: int = 0, encoder_norm: str = "group"):
        """obs_shape: one observation, (D,) for states or (3, S, S) for pixels; projection_dim: P of the
        consistency heads (0 = none); encoder_norm: "batch" or "group" after each conv of the pixel encoder
        (the default is what folders saved without the key hold; new models get MuZeroNetConfig's "batch")."""
        if encoder_norm not in ENCODER_NORMS:
            raise ValueError(f"encoder_norm must be one of {ENCODER_NORMS}, got {encoder_norm!r}")
        super().__init__()
        self.config = {"observation": observation, "obs_shape": list(obs_shape), "context_length": context_length,
                       "num_actions": num_actions, "latent_dim": latent_dim, "hidden": hidden, "layers": layers,
                       "channels": list(channels), "value_support": value_support,
                       "reward_support": reward_support, "projection_dim": projection_dim,
                       "encoder_norm": encoder_norm}
        self.observation, self.obs_shape, self.K = observation, tuple(obs_shape), context_length
        self.A, self.latent_dim = num_actions, latent_dim
        self.value_support, self.reward_support = value_support, reward_support
        k_actions = (context_length - 1) * num_actions
        if observation == "state":
            self.encoder = mlp(context_length * obs_shape[0] + k_actions, hidden, latent_dim, layers)
        else:
            convs: list[nn.Module] = []
            c_in, side = 3 * context_length + k_actions, obs_shape[-1]
            for c in channels:
                convs += [nn.Conv2d(c_in, c, 4 if side >= 4 else 3, stride=2 if side >= 4 else 1, padding=1),
                          nn.BatchNorm2d(c) if encoder_norm == "batch" else nn.GroupNorm(1, c), nn.ELU()]
                c_in, side = c, side // 2 if side >= 4 else side
            self.conv = nn.Sequential(*convs)
            with torch.no_grad():  # in eval mode: a probe must not move BatchNorm's running statistics
                n = self.conv.eval()(torch.zeros(1, 3 * context_length + k_actions, *obs_shape[-2:])).numel()
            self.conv.train()
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(n, latent_dim))
        self.dynamics_net = mlp(latent_dim + num_actions, hidden, hidden, layers - 1)
        self.next_latent = nn.Linear(hidden, latent_dim)
        self.reward_out = nn.Linear(hidden, 2 * reward_support + 1)
        self.trunk = mlp(latent_dim, hidden, hidden, layers - 1)
        self.policy_out = nn.Linear(hidden, num_actions)
        self.value_out = nn.Linear(hidden, 2 * value_support + 1)
        for lin in (self.reward_out, self.policy_out, self.value_out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.projection_dim = projection_dim
        if projection_dim:
            P, bottleneck = projection_dim, max(1, projection_dim // 2)  # EfficientZero: 1024 -> 512 -> 1024
            self.projection = nn.Sequential(nn.Linear(latent_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                            nn.Linear(hidden, P), nn.BatchNorm1d(P))
            self.predictor = nn.Sequential(nn.Linear(P, bottleneck), nn.BatchNorm1d(bottleneck), nn.ReLU(),
                                           nn.Linear(bottleneck, P))

    def represent(self, obs: Tensor, actions: Tensor) -> Tensor:
        """obs [B, K, D] float (states) or uint8 [B, K, 3, S, S] (pixels), actions long [B, K-1] -> [B, L]."""
        B = obs.shape[0]
        onehot = F.one_hot(actions.long(), self.A).float()  # [B, K-1, A]
        if self.observation == "state":
            x = torch.cat([obs.float().reshape(B, -1), onehot.reshape(B, -1)], -1)
            return scale_latent(self.encoder(x))
        S = obs.shape[-1]
        frames = obs.float().div(255.0).reshape(B, -1, S, S)  # [B, 3K, S, S]
        planes = onehot.reshape(B, -1, 1, 1).expand(-1, -1, S, S)  # [B, (K-1) A, S, S]
        return scale_latent(self.encoder(self.conv(torch.cat([frames, planes], 1))))

    def dynamics(self, latent: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """latent [B, L], actions long [B] -> (next latent [B, L] scaled, reward logits [B, 2R+1])."""
        x = self.dynamics_net(torch.cat([latent, F.one_hot(actions.long(), self.A).float()], -1))
        x = F.elu(x)
        return scale_latent(self.next_latent(x)), self.reward_out(x)

    def predict(self, latent: Tensor) -> tuple[Tensor, Tensor]:
        """latent [B, L] -> (policy logits [B, A], value logits [B, 2V+1])."""
        x = F.elu(self.trunk(latent))
        return self.policy_out(x), self.value_out(x)

    def project(self, latent: Tensor, online: bool) -> Tensor:
        """latent [B, L] -> [B, P]: the projection, followed by the predictor on the online (dynamics) branch
        (SimSiam's asymmetry: the target branch is the projection alone, under stop-gradient)."""
        if not self.projection_dim:
            raise ValueError("these MuZero networks have no consistency heads (projection_dim 0); build them "
                             "with muzero.learn.consistency_weight > 0")
        z = self.projection(latent)
        return self.predictor(z) if online else z
