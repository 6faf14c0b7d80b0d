# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create/reuse .venv and install what they need. On machines that carry the local CPU wheel,
# `pip install torch==2.13.0` takes it in seconds; elsewhere set TORCH_SPEC (e.g. TORCH_SPEC=torch).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
export SDL_VIDEODRIVER ?= dummy
export PYTHONHASHSEED ?= 0

.PHONY: install demo test bench play clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/vidworld demo $(ARGS)

test: install
	$(BIN)/python -m pytest tests $(ARGS)

bench: install
	$(BIN)/python bench/world_model.py

# `make play MODEL=runs/demo/model`: the play page at http://127.0.0.1:7860/ (ARGS="--port 8000" etc.)
MODEL ?= runs/demo/model
play: install
	$(BIN)/vidworld play --model $(MODEL) $(ARGS)

clean:
	rm -rf $(VENV) runs
