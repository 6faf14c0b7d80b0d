"""`vidworld play` as a command: refuses bad input in one line, prints its URL, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from vidworld import cli


@pytest.mark.parametrize("argv, says", [
    (["--model", "/no/such/model"], "not found"),
    (["--model", ".", "--port", "70000"], "--port must be in 0..65535"),
    (["--model", ".", "--threads", "0"], "--threads must be >= 1"),
])
def test_bad_arguments_are_one_line_errors(argv, says, capsys):
    assert cli.main(["play", *argv]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidworld play: error:") and says in err and "\n" not in err


def test_a_port_in_use_is_a_one_line_error(tiny_world, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert cli.main(["play", "--model", str(tiny_world.model_dir), "--port", str(port)]) == cli.EXIT_USER_ERROR
    assert "choose another --port" in capsys.readouterr().err


def test_serves_the_printed_url_and_stops_cleanly_on_ctrl_c(tiny_world):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vidworld.cli", "play", "--model", str(tiny_world.model_dir),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("vidworld play: serving http://127.0.0.1:"), (line, proc.stderr.read())
        url = line.split()[3]
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and b'id="frame"' in page.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "vidworld play: stopped" in out and "Traceback" not in err
