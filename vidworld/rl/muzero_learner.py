"""One MuZero update (Schrittwieser et al. 2020, Appendix G; muzero-general's `update_weights`), readable top
to bottom: represent the observation, unroll the dynamics K steps along the real actions, and score every
step's value, reward and policy against the replay's targets, and (optionally) every unrolled latent against
the representation of the observation actually reached (EfficientZero's temporal consistency, Ye et al. 2021).

  loss = sum_k  w * ( value_loss_weight * CE(value_k, two-hot z_k) + CE(reward_k, two-hot u_k) + CE(policy_k, pi_k)
                      + consistency_weight * m_k * -cos(pred(proj(s_k)), sg(proj(h(o_{t+k})))) )
  * losses of the unrolled steps k >= 1 are scaled by 1/K (the paper scales their gradient);
  * the gradient flowing back into the dynamics is halved at every step (`scale_gradient(s, 0.5)`);
  * w: the prioritised replay's importance weights; new priorities |V(o_t) - z_t|;
  * consistency (k >= 1 only; consistency_weight 0 = off): SimSiam's negative cosine between the predictor
    over the projection of the dynamics latent s_k (the online branch) and the projection of the current
    network's representation of the window ending at t+k (the target branch, under stop-gradient sg: no
    gradient reaches the representation or projection through it, as EfficientZero); m_k masks positions
    past the end of the game (t+k > N).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidworld.rl.muzero_config import MuZeroLearnConfig
from vidworld.rl.muzero_replay import Batch
from vidworld.world_models.muzero.networks import MuZeroNetworks
from vidworld.world_models.muzero.support import scalar_to_support, support_to_scalar


def scale_gradient(x: Tensor, scale: float) -> Tensor:
    """Identity forward; multiplies the gradient by `scale` backward."""
    return x * scale + x.detach() * (1 - scale)


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """[B, C] logits vs [B, C] target probabilities -> [B]."""
    return -(target * torch.log_softmax(logits, -1)).sum(-1)


def negative_cosine(online: Tensor, target: Tensor) -> Tensor:
    """[B, P] vs [B, P] -> [B]: -cos(online, target), the target detached (SimSiam's stop-gradient)."""
    return -(F.normalize(online, dim=-1) * F.normalize(target.detach(), dim=-1)).sum(-1)


def muzero_update(nets: MuZeroNetworks, optimizer: torch.optim.Optimizer, batch: Batch,
                  cfg: MuZeroLearnConfig) -> tuple[dict[str, float], Tensor]:
    """One gradient step on `batch` (sampled with next_windows when cfg.consistency_weight > 0); returns
    (logged losses, new priorities [B])."""
    B, U = batch.actions.shape
    consistency = cfg.consistency_weight > 0
    if consistency and batch.next_obs is None:
        raise ValueError("consistency_weight > 0 needs a batch sampled with next_windows=True")
    nets.train()
    latent = nets.represent(batch.obs, batch.context_actions)
    value_loss = reward_loss = policy_loss = consistency_loss = torch.zeros(B)
    priorities = None
    for k in range(U + 1):
        if k > 0:
            latent, reward_logits = nets.dynamics(latent, batch.actions[:, k - 1])
            latent = scale_gradient(latent, 0.5)
            r = cross_entropy(reward_logits, scalar_to_support(batch.target_rewards[:, k - 1], nets.reward_support))
            if consistency:
                with torch.no_grad():  # the target branch: the window at t+k (B at a time: faster than B*U)
                    target = nets.represent(batch.next_obs[:, k - 1], batch.next_context_actions[:, k - 1])
                    target = nets.project(target, online=False)
                c = negative_cosine(nets.project(latent, online=True), target) * batch.next_mask[:, k - 1]
                consistency_loss = consistency_loss + c / U
        policy_logits, value_logits = nets.predict(latent)
        v = cross_entropy(value_logits, scalar_to_support(batch.target_values[:, k], nets.value_support))
        p = cross_entropy(policy_logits, batch.target_policies[:, k])
        v, p = v * batch.value_mask[:, k], p * batch.policy_mask[:, k]
        if k == 0:
            with torch.no_grad():
                pred = support_to_scalar(value_logits, nets.value_support)
                priorities = (pred - batch.target_values[:, 0]).abs() + 1e-6
            value_loss, policy_loss = value_loss + v, policy_loss + p
        else:
            value_loss, policy_loss, reward_loss = value_loss + v / U, policy_loss + p / U, reward_loss + r / U
    per_sample = cfg.value_loss_weight * value_loss + reward_loss + policy_loss
    if consistency:
        per_sample = per_sample + cfg.consistency_weight * consistency_loss
    total = (per_sample * batch.weights).mean()
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(nets.parameters(), cfg.grad_clip)
    optimizer.step()
    nets.eval()
    value_loss, reward_loss, policy_loss = value_loss.detach(), reward_loss.detach(), policy_loss.detach()
    logs = {"loss": float(total.detach()), "value_loss": float(value_loss.mean()), "reward_loss": float(reward_loss.mean()),
            "policy_loss": float(policy_loss.mean()), "grad_norm": float(grad_norm)}
    if consistency:
        logs["consistency_loss"] = float(consistency_loss.detach().mean())
    return logs, priorities
