"""RSSMNetworks: every network of the DreamerV3 world model in one diffusers ModelMixin (one folder).

State of the RSSM (Hafner et al. 2023, eq. 1): a deterministic GRU state h_t [D] and a stochastic state
z_t of S categoricals with C classes each, kept one-hot and flattened [S*C]; features s_t = [h_t, z_t].

    sequence model   h_t = GRU(h_{t-1}, SiLU(LN(W [z_{t-1}, a_{t-1}])))
    encoder          e_t = CNN(x_t)
    posterior        q(z_t | h_t, e_t)      (representation model; filters real frames)
    prior            p(z_t | h_t)           (dynamics predictor; imagines)
    decoder          x_t ~ N(CNN^T(s_t), 1)
    reward           r_t ~ two-hot symlog(MLP(s_t)),  continue c_t ~ Bernoulli(MLP(s_t))
    value (optional) V(s_t) ~ two-hot symlog(MLP(sg(s_t))): the data policy's discounted return

The prior and the heads read each step's h_t only, so training runs them once on the whole [B, T] sequence
after the recurrent loop; the loop itself holds only the GRU and the posterior (the image embedding's and
action's shares of their first layers are also projected once per sequence, see `NormLinear`).
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn

from vidworld.world_models.rssm.blocks import ConvDecoder, ConvEncoder, LayerNormGRU, NormLinear, mlp
from vidworld.world_models.rssm.losses import (
    mode_onehot,
    sample_onehot,
    symlog_bins,
    twohot_symlog_mean,
    unimix_log_probs,
)


class RSSMNetworks(ModelMixin, ConfigMixin):
    """All sizes come from the config (see `vidworld.world_models.rssm.config` for the presets)."""

    config_name = "rssm_config.json"

    @register_to_config
    def __init__(
        self,
        frame_size: int = 64,
        num_actions: int = 2,
        depth: int = 16,
        minres: int = 4,
        deter: int = 256,
        hidden: int = 256,
        stoch: int = 16,
        classes: int = 16,
        units: int = 256,
        head_layers: int = 2,
        unimix: float = 0.01,
        reward_bins: int = 255,
        value_discount: float = 0.0,
    ):
        super().__init__()
        self.encoder = ConvEncoder(frame_size, depth, minres)
        zdim = stoch * classes
        self.feature_dim = deter + zdim
        self.img_in = NormLinear((zdim, num_actions), hidden)  # [z_{t-1}, a_{t-1}] -> GRU input
        self.gru = LayerNormGRU(hidden, deter)
        self.img_out = NormLinear((deter,), hidden)  # prior p(z_t | h_t)
        self.img_logits = nn.Linear(hidden, zdim)
        self.obs_in = NormLinear((deter, self.encoder.out_dim), hidden)  # posterior q(z_t | h_t, e_t)
        self.obs_logits = nn.Linear(hidden, zdim)
        self.initial_deter = nn.Parameter(torch.zeros(deter))  # h_0 = tanh(W), learned (dreamerv3-torch)
        self.decoder = ConvDecoder(self.feature_dim, frame_size, depth, minres)
        head_in = units if head_layers else self.feature_dim
        self.reward_mlp = mlp(self.feature_dim, units, head_layers)
        self.reward_out = nn.Linear(head_in, reward_bins)
        self.cont_mlp, self.cont_out = mlp(self.feature_dim, units, head_layers), nn.Linear(head_in, 1)
        # Optional value of a state (value_discount > 0): the discounted return of the policy that collected
        # the data, which planners bootstrap with past their horizon (the diffusion value's targets)
        self.value_mlp = mlp(self.feature_dim, units, head_layers) if value_discount > 0 else None
        self.value_out = nn.Linear(head_in, reward_bins) if value_discount > 0 else None
        # DreamerV3: zero-initialised reward (and critic) outputs: early predictions are 0, not noise
        for out in (self.reward_out, self.value_out):
            if out is not None:
                nn.init.zeros_(out.weight)
                nn.init.zeros_(out.bias)
        self.register_buffer("bins", symlog_bins(reward_bins), persistent=False)
        self.stoch, self.classes = stoch, classes

    # --- pieces ---------------------------------------------------------------------------------------
    def embed(self, frames: Tensor) -> Tensor:
        """uint8 [N, 3, S, S] -> image embeddings [N, E] (pixels scaled to [-0.5, 0.5]: images are not
        symlog-squashed, DreamerV3 applies symlog to vector inputs only)."""
        return self.encoder(frames.to(self.dtype) / 255.0 - 0.5)

    def decode(self, feat: Tensor) -> Tensor:
        """features [N, F] -> predicted frames [N, 3, S, S] in [-0.5, 0.5] units (unclamped)."""
        return self.decoder(feat)

    def prior(self, deter: Tensor) -> Tensor:
        """h [..., D] -> prior log-probs [..., S, C] (1% unimix)."""
        logits = self.img_logits(self.img_out(deter)).unflatten(-1, (self.stoch, self.classes))
        return unimix_log_probs(logits, self.config.unimix)

    def posterior(self, deter_proj: Tensor, embed_proj: Tensor) -> Tensor:
        """The posterior from the projected h and projected image embedding -> log-probs [..., S, C]."""
        logits = self.obs_logits(self.obs_in.finish(deter_proj + embed_proj))
        logits = logits.unflatten(-1, (self.stoch, self.classes))
        return unimix_log_probs(logits, self.config.unimix)

    def initial(self, batch: int) -> tuple[Tensor, Tensor]:
        """The state before the first frame of an episode: h_0 = tanh(W), z_0 = the prior's mode at h_0."""
        deter = torch.tanh(self.initial_deter)[None].expand(batch, -1)
        return deter, mode_onehot(self.prior(deter[:1])).flatten(-2).expand(batch, -1)

    def heads(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """features [..., F] -> (reward logits [..., bins], continue logit [...])."""
        return self.reward_out(self.reward_mlp(feat)), self.cont_out(self.cont_mlp(feat))[..., 0]

    @property
    def has_value(self) -> bool:
        return self.value_out is not None

    def value_logits(self, feat: Tensor) -> Tensor:
        """features [..., F] -> value logits [..., bins] (callers detach features when training it)."""
        if self.value_out is None:
            raise ValueError("these RSSM networks have no value head (trained with rssm.value_discount=0)")
        return self.value_out(self.value_mlp(feat))

    def predict(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """features [..., F] -> (reward [...] = symexp of the two-hot expectation, P(termination) [...])."""
        reward_logits, cont_logit = self.heads(feat)
        return twohot_symlog_mean(reward_logits, self.bins), torch.sigmoid(-cont_logit)

    # --- dynamics -------------------------------------------------------------------------------------
    def imagine_step(self, deter: Tensor, stoch: Tensor, action: Tensor, uniform: Tensor | None
                     ) -> tuple[Tensor, Tensor, Tensor]:
        """One prior step. deter [B, D], stoch [B, S*C], action one-hot (or soft) [B, A], uniform [B, S] in
        [0, 1) (None: the prior's mode) -> (deter, stoch (straight-through sample), prior log-probs
        [B, S, C])."""
        x = self.img_in(stoch, action)
        deter = self.gru(x, deter)
        log_probs = self.prior(deter)
        z = mode_onehot(log_probs) if uniform is None else sample_onehot(log_probs, uniform)
        return deter, z.flatten(-2), log_probs

    def observe_step(self, deter: Tensor, stoch: Tensor, action: Tensor, embed: Tensor,
                     uniform: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """One posterior step (the filter's update after a real frame): deter [B, D], stoch [B, S*C], action
        one-hot [B, A] (the action that led to the frame), embed [B, E] (`embed` of the frame), uniform [B, S]
        in [0, 1) or None (the posterior's mode) -> (deter, stoch, posterior log-probs [B, S, C]). The same
        sums as one time step of `observe`, in the same order."""
        x = self.img_in.finish(self.img_in.project(0, stoch) + self.img_in.project(1, action))
        deter = self.gru(x, deter)
        log_probs = self.posterior(self.obs_in.project(0, deter), self.obs_in.project(1, embed))
        z = mode_onehot(log_probs) if uniform is None else sample_onehot(log_probs, uniform)
        return deter, z.flatten(-2), log_probs

    def observe(self, frames: Tensor, prev_actions: Tensor, is_first: Tensor, uniform: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """Filter a batch of sequences with the posterior.

        frames uint8 [B, T, 3, S, S]; prev_actions one-hot float [B, T, A] (the action that led to frame t;
        ignored where is_first); is_first bool [B, T] (episode starts: the state resets to `initial`, as in
        DreamerV3); uniform [B, T, S] in [0, 1) for posterior samples, or None for the posterior's mode.
        Returns deter [B, T, D], stoch [B, T, S*C] (straight-through samples), posterior log-probs
        [B, T, S, C]. One Python step per time step; everything else is batched over B (and over T where
        the step does not depend on the previous one).
        """
        B, T = frames.shape[:2]
        embed = self.embed(frames.flatten(0, 1)).unflatten(0, (B, T))
        embed_proj = self.obs_in.project(1, embed)  # [B, T, hidden]: the posterior's image share, all steps
        act = prev_actions.to(embed.dtype) * (~is_first)[..., None].to(embed.dtype)
        act_proj = self.img_in.project(1, act)  # [B, T, hidden]: the sequence model's action share
        deter0, stoch0 = self.initial(B)
        deter, stoch = deter0, stoch0
        deters, stochs, posts = [], [], []
        for t in range(T):
            reset = is_first[:, t, None]
            deter, stoch = torch.where(reset, deter0, deter), torch.where(reset, stoch0, stoch)
            deter = self.gru(self.img_in.finish(self.img_in.project(0, stoch) + act_proj[:, t]), deter)
            log_probs = self.posterior(self.obs_in.project(0, deter), embed_proj[:, t])
            z = mode_onehot(log_probs) if uniform is None else sample_onehot(log_probs, uniform[:, t])
            stoch = z.flatten(-2)
            deters.append(deter)
            stochs.append(stoch)
            posts.append(log_probs)
        return torch.stack(deters, 1), torch.stack(stochs, 1), torch.stack(posts, 1)
