"""Environments: pixel wrappers for real gymnasium envs, and world models served as gymnasium envs.

Importing this package registers "vidworld/WorldModel-v0" with gymnasium (see `registration`).
"""

from vidworld.envs import registration as registration  # registers the env ids
