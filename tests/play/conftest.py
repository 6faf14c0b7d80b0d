"""Fixtures for the play tests: a tiny diffusion model with its real CartPole dataset, served in-process."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from tests.models.tiny import tiny_world_on_disk
from vidworld.play.server import PlayServer, create_app, running


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """16x16 CartPole data (40 real steps, with recorded states) + a tiny diffusion model that records it."""
    return tiny_world_on_disk(tmp_path_factory.mktemp("play_world"))


@pytest.fixture
def play_server(tiny_world: SimpleNamespace) -> Iterator[PlayServer]:
    """A fresh server over the tiny model (loading it takes ~0.1 s); the app's shutdown closes it."""
    server = PlayServer(tiny_world.model_dir, precision="fp32")
    yield server
    server.close()


@pytest.fixture
def client(play_server: PlayServer) -> Iterator[TestClient]:
    with TestClient(create_app(play_server)) as c:
        yield c


@pytest.fixture
def live_url(play_server: PlayServer) -> Iterator[str]:
    """The play app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""
    with running(play_server, create_app(play_server)) as url:
        yield url
