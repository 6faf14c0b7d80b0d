"""Planning tests run tiny tensor ops in tight loops: on a shared 2-core machine OpenMP's thread team costs
far more than it saves (a [5, 2] softmax took milliseconds under load), so use one intra-op thread here and
restore the setting afterwards."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
