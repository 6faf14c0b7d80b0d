import pytest
import torch
from torch.utils.data import Dataset

from vidworld.world_models.copy_last import CopyLastFrameModel, CopyLastState
from vidworld.eval.horizon import (
    eval_mode,
    evaluate_heads,
    evaluate_horizon,
    open_loop_rollout,
    target_validity,
)
from vidworld.eval.metrics import psnr, ssim
from vidworld.protocol import ActionSpec, WorldModel, index_state, repeat_state

K, H = 3, 5


def test_copy_last_model_conforms_to_protocol(clips):
    model = CopyLastFrameModel(ActionSpec(n=2), context_length=K, frame_size=8)
    assert isinstance(model, WorldModel)
    state = model.init(clips["frames"][:, :K], clips["actions"][:, : K - 1])
    assert torch.equal(model.decode(state), clips["frames"][:, K - 1])
    branched = repeat_state(state, 3)
    assert isinstance(branched, CopyLastState) and branched.frame.shape[0] == 18
    assert torch.equal(index_state(branched, 4).frame, state.frame[1:2])
    nxt, out = model.step(state, clips["actions"][:, K - 1])
    assert torch.equal(model.decode(nxt), clips["frames"][:, K - 1])
    assert torch.equal(model.decode(out.latent), clips["frames"][:, K - 1])  # latents decode back exactly
    assert out.reward.eq(0).all() and out.termination_prob.eq(0).all() and not out.terminated.any()
    with pytest.raises(ValueError, match="out of range"):
        model.step(state, torch.full((6,), 2))
    with pytest.raises(ValueError, match="context frames"):
        model.init(clips["frames"][:, : K + 1], clips["actions"][:, :K])
    with pytest.raises(ValueError, match="context_actions"):
        model.init(clips["frames"][:, :K], clips["actions"][:, :K])


def test_open_loop_rollout_of_copy_last_is_the_copy_last_reference(clips):
    model = CopyLastFrameModel(ActionSpec(n=2), context_length=K)
    imagined = open_loop_rollout(model, clips["frames"], clips["actions"], K, H)
    assert imagined.shape == (6, H, 3, 8, 8) and imagined.dtype == torch.uint8
    assert torch.equal(imagined, clips["frames"][:, K - 1 : K].expand(-1, H, -1, -1, -1))
    result = evaluate_horizon(model, clips, K, H)
    assert result.model_psnr == result.copy_last_psnr and result.model_ssim == result.copy_last_ssim
    assert result.vae_psnr is None and result.vae_ssim is None
    assert result.n_clips == 6 and len(result.model_psnr) == H
    with pytest.raises(ValueError, match="need at least 9"):
        open_loop_rollout(model, clips["frames"][:, :8], clips["actions"][:, :7], K, 6)


def test_target_validity_masks_targets_after_episode_end():
    no = torch.zeros(3, 6, dtype=torch.bool)
    batch = {"actions": torch.zeros(3, 6, dtype=torch.long), "terminated": no.clone()}
    batch["truncated"] = no.clone()
    batch["terminated"][0, 3] = True  # transition 3 leads to frame 4 = target 1 (K=3): targets 0, 1 valid
    batch["truncated"][1, 0] = True  # context crosses an episode end: nothing valid
    valid = target_validity(batch, context_length=3, horizon=4)
    expected = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(valid, expected)


def test_evaluate_horizon_exact_model_vae_ceiling_and_masking(toy):
    batch = toy.make_clips(batch=8, length=K + H, seed=3)
    model = toy.ToyModel(follow=True)
    result = evaluate_horizon(model, batch, K, H)
    valid = target_validity(batch, K, H)
    assert valid.sum() < valid.numel(), "fixture should contain clips that end inside the horizon"
    assert result.n_valid == tuple(valid.sum(0).tolist())
    assert result.model_psnr == (100.0,) * H and result.model_ssim == pytest.approx((1.0,) * H)
    target = batch["frames"][:, K:]
    copy_last = batch["frames"][:, K - 1 : K].expand_as(target)
    for name, pred in (("copy_last", copy_last), ("vae", target // 4 * 4)):
        for metric in (psnr, ssim):
            expected = [metric(pred, target)[valid[:, t], t].double().mean().item() for t in range(H)]
            assert getattr(result, f"{name}_{metric.__name__}") == pytest.approx(expected, abs=1e-5)
    assert max(result.copy_last_psnr) < 100.0 and max(result.vae_psnr) < 100.0


class _ItemDataset(Dataset):
    """Map-style dataset of item dicts, as SegmentDataset returns them."""

    def __init__(self, batch):
        self.batch = batch

    def __len__(self):
        return self.batch["frames"].shape[0]

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.batch.items()}


def test_evaluate_horizon_accepts_dataset_batches_and_max_batches(toy):
    batch = toy.make_clips(batch=8, length=K + H, seed=4)
    model = toy.ToyModel(follow=False)
    whole = evaluate_horizon(model, batch, K, H)
    via_dataset = evaluate_horizon(model, _ItemDataset(batch), K, H, batch_size=3)
    assert via_dataset.n_clips == 8
    assert via_dataset.model_psnr == pytest.approx(whole.model_psnr)
    halves = [{k: v[:4] for k, v in batch.items()}, {k: v[4:] for k, v in batch.items()}]
    first = evaluate_horizon(model, halves, K, H, max_batches=1)
    assert first.n_clips == 4
    assert first.model_psnr == pytest.approx(evaluate_horizon(model, halves[0], K, H).model_psnr)
    assert min(whole.model_psnr) < 100.0  # a model that ignores 'right' is wrong somewhere
    with pytest.raises(ValueError, match="no batches"):
        evaluate_horizon(model, [], K, H)


def test_evaluate_heads_imagined_vs_teacher_forced(toy):
    windows = toy.make_clips(batch=200, length=K + 1, seed=5)  # like SegmentDataset(horizon=1)
    ok = ~windows["terminated"][:, : K - 1].any(1)  # the toy clips run on past episode ends: skip those
    exact = evaluate_heads(toy.ToyModel(follow=True), windows, K)
    assert exact.n_transitions == int(ok.sum())
    assert 0 < exact.n_terminal == int(windows["terminated"][ok, K - 1].sum())
    assert exact.termination_rate == pytest.approx(exact.n_terminal / exact.n_transitions)
    assert exact.imagined.termination_auroc == 1.0 and exact.imagined.reward_mae == 0.0
    assert exact.teacher_forced is not None and exact.teacher_forced.termination_auroc == 1.0
    # Wrong dynamics: its own imagined next frame misleads the heads, the real next frame does not.
    wrong = evaluate_heads(toy.ToyModel(follow=False), windows, K)
    assert wrong.imagined.termination_auroc < 0.9 and wrong.imagined.reward_mae > 0.05
    assert wrong.teacher_forced.termination_auroc == 1.0 and wrong.teacher_forced.reward_mae == 0.0
    # No predict_heads: only the imagined scores; constant p=0 has AUROC 1/2, accuracy = 1 - positive rate.
    copy = evaluate_heads(CopyLastFrameModel(ActionSpec(n=2), K), windows, K)
    assert copy.teacher_forced is None and copy.imagined.termination_auroc == 0.5
    assert copy.imagined.termination_accuracy == pytest.approx(1 - copy.termination_rate)
    assert copy.imagined.reward_mae == pytest.approx(windows["rewards"][ok, K - 1].abs().mean().item())


def test_evaluate_heads_all_windows_skips_contexts_across_episode_ends(toy):
    clips = toy.make_clips(batch=20, length=8, seed=6)
    result = evaluate_heads(toy.ToyModel(follow=True), clips, K, all_windows=True)
    ends = clips["terminated"]
    expected = sum(int((~ends[:, s : s + K - 1].any(1)).sum()) for s in range(8 - K))
    assert result.n_transitions == expected < 20 * (8 - K)
    assert result.imagined.termination_auroc == 1.0
    first_only = evaluate_heads(toy.ToyModel(follow=True), clips, K)
    assert first_only.n_transitions == int((~ends[:, : K - 1].any(1)).sum()) < 20


def test_teacher_forcing_only_for_models_that_declare_it(toy):
    windows = toy.make_clips(batch=64, length=K + 1, seed=7)

    class NoTeacher(toy.ToyModel):  # same dynamics, but it cannot encode a real frame
        encode = None
        predict_heads = None

    full = evaluate_heads(toy.ToyModel(follow=False), windows, K)
    bare = evaluate_heads(NoTeacher(follow=False), windows, K)
    assert full.teacher_forced is not None and full.teacher_forced.reward_mae == 0.0  # exact on real frames
    assert bare.teacher_forced is None and bare.imagined == full.imagined


def test_eval_mode_disables_grad_and_restores_training_mode():
    net = torch.nn.Linear(2, 2)
    with eval_mode(net):
        assert not net.training and not torch.is_grad_enabled()
    assert net.training and torch.is_grad_enabled()
    net.eval()
    with eval_mode(net):
        pass
    assert not net.training
