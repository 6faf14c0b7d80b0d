"""`vidworld play`: drive a world model by hand in a local web page.

    vidworld play --model runs/demo/model            # serves http://127.0.0.1:7860/ until Ctrl-C

Layout (each module owns one thing):
* `actions.py`  — what each action id means in the env the model was trained on, and its key binding;
* `uploads.py`  — context images uploaded from the page: validated, size-limited, decoded to frames;
* `real_env.py` — the real env replayed from a context's recorded state under the same actions;
* `session.py`  — one tab's play state (world-model state, rollout so far, options); no web code;
* `server.py`   — the starlette app (page, static files, websocket, rollout download) and uvicorn serving;
* `run.py`      — the CLI command (`add_arguments` / `run`);
* `static/`     — the one page (HTML, JS, CSS) and nothing else the server will hand out.
"""
