"""Agent tests run small MLPs and toy models in tight Python loops: one intra-op thread is faster than an
OpenMP team on the shared 2-core machine (as in tests/planning); the setting is restored afterwards."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
