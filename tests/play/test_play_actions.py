"""Action meanings and key bindings of the play page, per env family."""

from __future__ import annotations

from vidworld.play.actions import action_bindings


def test_cartpole_is_left_and_right_on_the_arrows():
    b = action_bindings("CartPole-v1", 2)
    assert [(x.meaning, x.keys) for x in b] == [("LEFT", ("ArrowLeft", "1")), ("RIGHT", ("ArrowRight", "2"))]


def test_atari_meanings_come_from_the_emulator():
    b = action_bindings("ALE/Pong-v5", 6)
    assert [x.meaning for x in b] == ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]
    assert b[1].keys == (" ", "2") and b[3].keys == ("ArrowLeft", "4") and b[4].keys == ("5",)


def test_minigrid_meanings_and_forward_on_arrow_up():
    b = action_bindings("MiniGrid-Empty-8x8-v0", 7)
    assert [x.meaning for x in b][:3] == ["left", "right", "forward"] and b[2].keys[0] == "ArrowUp"


def test_unknown_env_or_other_action_count_falls_back_to_numbers():
    assert [x.meaning for x in action_bindings(None, 3)] == ["action 0", "action 1", "action 2"]
    assert [x.meaning for x in action_bindings("CartPole-v1", 3)] == ["action 0", "action 1", "action 2"]
    assert [x.meaning for x in action_bindings("NoSuchEnv-v0", 2)] == ["action 0", "action 1"]
    many = action_bindings(None, 40)
    assert all(len(x.keys) == 1 for x in many[:35]) and many[39].keys == ()
    assert len({x.keys[0] for x in many[:35]}) == 35  # no key takes two actions
