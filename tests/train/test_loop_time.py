"""The training loop's time survives resumes: a resumed run reports what the whole training took, not only
the part after the restart (a fidelity table built from `train_summary.json` read 12.8 minutes for a ~46-minute
training that a session end had cut)."""

import shutil
import time
from pathlib import Path

import torch

from vidworld.train.checkpoint import make_accelerator
from vidworld.train.config import TrainConfig
from vidworld.train.loop import Stage, stage_seconds, train_loop

STEP_S = 0.1  # each step sleeps this long, so the loop's time is known to within scheduling noise


def _run(stage_dir: Path, resume: bool):
    cfg = TrainConfig(checkpoint_every=2, log_every=1, warmup_steps=0, tensorboard=False, keep_checkpoints=3)
    acc = make_accelerator(cfg, stage_dir)
    torch.manual_seed(0)
    module = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    module, opt = acc.prepare(module, opt)

    def batch_loss(gen):
        time.sleep(STEP_S)
        x = torch.randn(4, 2, generator=gen)
        return module(x).pow(2).mean(), {}

    return train_loop(acc, module, opt, Stage("t", 4, 4, 0.1), cfg, batch_loss, resume=resume, progress=False)


def test_loop_time_is_summed_over_resumes_and_kept_for_finished_stages(tmp_path):
    first = _run(tmp_path, resume=False)
    assert first.total_seconds >= 4 * STEP_S and first.total_seconds == first.seconds
    assert stage_seconds(tmp_path) == first.total_seconds

    # killed after step 2: the resumed call runs steps 3-4 only, yet reports the time of all four steps
    shutil.rmtree(tmp_path / "checkpoints" / "checkpoint_4")
    (tmp_path / "timing.json").unlink()
    resumed = _run(tmp_path, resume=True)
    assert resumed.resumed_from == 2
    assert resumed.seconds >= 2 * STEP_S
    before = resumed.total_seconds - resumed.seconds  # steps 1-2, as checkpoint_2 recorded them in the first call
    assert 2 * STEP_S <= before < first.total_seconds
    assert stage_seconds(tmp_path) == resumed.total_seconds

    # resumed at the end: nothing runs, the total is the checkpoint's
    done = _run(tmp_path, resume=True)
    assert done.seconds == 0 and done.total_seconds == resumed.total_seconds


def test_stage_without_timing_reads_as_unknown(tmp_path):
    assert stage_seconds(tmp_path) != stage_seconds(tmp_path)  # nan: a stage trained before time was kept
