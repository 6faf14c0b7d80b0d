import pytest
import torch

from vidworld.world_models.copy_last import CopyLastFrameModel
from vidworld.eval.controllability import controllability
from vidworld.protocol import ActionSpec

K, H = 3, 4


def _setup(toy, seed=0):
    clips = toy.make_clips(batch=8, length=K + H, seed=seed)
    ctx, ctx_a = clips["frames"][:, :K], clips["actions"][:, : K - 1]
    actions_a = clips["actions"][:, K - 1 :]
    actions_b = 1 - actions_a  # the opposite pushes: the two real futures differ from step 1
    last = ctx[:, -1]
    return ctx, ctx_a, actions_a, actions_b, toy.replay(last, actions_a), toy.replay(last, actions_b)


def test_action_following_model_scores_positive(toy):
    ctx, ctx_a, a, b, gt_a, gt_b = _setup(toy)
    result = controllability(toy.ToyModel(follow=True), ctx, ctx_a, a, b, gt_a, gt_b)
    assert len(result.score) == H and result.n_clips == 8
    assert result.matched_psnr == (100.0,) * H  # it reproduces both real futures exactly
    assert all(s > 10.0 for s in result.score)
    assert result.mean == pytest.approx(sum(result.score) / H)
    assert result.score == pytest.approx([m - c for m, c in zip(result.matched_psnr, result.crossed_psnr)])


def test_action_ignoring_models_score_exactly_zero(toy):
    ctx, ctx_a, a, b, gt_a, gt_b = _setup(toy)
    for model in (CopyLastFrameModel(ActionSpec(n=2), K), toy.ToyModel(follow=False)):
        assert controllability(model, ctx, ctx_a, a, b, gt_a, gt_b).score == (0.0,) * H
    # Stochastic and action-ignoring: common random numbers make the two rollouts identical.
    noisy = toy.ToyModel(follow=False, noise=60)
    g = torch.Generator().manual_seed(0)
    assert controllability(noisy, ctx, ctx_a, a, b, gt_a, gt_b, generator=g).score == (0.0,) * H
    torch.manual_seed(0)  # without a generator the two rollouts draw different noise: ~0 but not 0
    free = controllability(noisy, ctx, ctx_a, a, b, gt_a, gt_b).score
    assert any(s != 0.0 for s in free) and all(abs(s) < 1.0 for s in free)


def test_reversed_model_scores_negative_and_equal_actions_score_zero(toy):
    ctx, ctx_a, a, b, gt_a, gt_b = _setup(toy)

    class Reversed(toy.ToyModel):
        def step(self, state, actions, generator=None):
            return super().step(state, 1 - actions, generator)

    assert all(s < -10.0 for s in controllability(Reversed(), ctx, ctx_a, a, b, gt_a, gt_b).score)
    same = controllability(toy.ToyModel(follow=True), ctx, ctx_a, a, a, gt_a, gt_a)
    assert same.score == (0.0,) * H


def test_shape_errors_name_the_problem(toy):
    ctx, ctx_a, a, b, gt_a, gt_b = _setup(toy)
    model = toy.ToyModel()
    with pytest.raises(ValueError, match="actions_a"):
        controllability(model, ctx, ctx_a, a, b[:, :2], gt_a, gt_b)
    with pytest.raises(ValueError, match="gt_b"):
        controllability(model, ctx, ctx_a, a, b, gt_a, gt_b[:, :2])
