"""`CountingModel`: any world model, with a count of the imagined transitions stepped through it."""

from __future__ import annotations


class CountingModel:
    """Forwards the protocol (and anything else) to `model`; counts imagined transitions (rows stepped).

    Planners and learners take it wherever they take a model: capability checks (`isinstance(m, PixelDecoder)`)
    see the wrapped model's attributes through `__getattr__`. `unwrap(m)` gives back the model itself."""

    def __init__(self, model):
        self.model = model
        self.transitions = 0

    def step(self, state, actions, generator=None):
        self.transitions += int(actions.shape[0])
        return self.model.step(state, actions, generator)

    def __getattr__(self, name):  # init, decode, action_spec, context_length, decode_from, ...
        if name == "model":  # not set yet (e.g. while copying): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)


def unwrap(model):
    """The model inside any CountingModel wrappers."""
    while isinstance(model, CountingModel):
        model = model.model
    return model
