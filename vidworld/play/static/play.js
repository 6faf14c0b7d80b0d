// vidworld play: the page side of the websocket protocol (vidworld/play/messages.py).
// Every message we send gets exactly one reply; a held key sends the next step when the previous frame has
// arrived (and not sooner than the speed limit allows), so there is never more than one step in flight.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const S = {
    ws: null, hello: null, pending: 0, held: null, queued: null, lastSent: 0, minInterval: 1000 / 15,
    keys: new Map(), frameTimes: [], framesReceived: 0, modelMsTotal: 0, steps: 0, buttons: new Map(), timer: null,
  };

  // ------------------------------------------------------------------------------------------ drawing
  const scratch = document.createElement("canvas");
  function draw(canvas, b64, size) {
    const raw = atob(b64);
    if (raw.length !== size * size * 3) return;
    if (scratch.width !== size) { scratch.width = size; scratch.height = size; }
    const sctx = scratch.getContext("2d");
    const img = sctx.createImageData(size, size);
    for (let i = 0, j = 0; i < raw.length; i += 3, j += 4) {
      img.data[j] = raw.charCodeAt(i); img.data[j + 1] = raw.charCodeAt(i + 1);
      img.data[j + 2] = raw.charCodeAt(i + 2); img.data[j + 3] = 255;
    }
    sctx.putImageData(img, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;  // nearest-neighbour upscaling: the model's pixels stay crisp
    ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
  }

  const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

  // -------------------------------------------------------------------------------------------- socket
  function send(obj) { sendRaw(JSON.stringify(obj)); }
  function sendRaw(text) {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN) { showError("not connected to the server"); return; }
    S.pending += 1;
    S.lastSent = performance.now();
    S.ws.send(text);
  }
  function replied() { S.pending = Math.max(0, S.pending - 1); scheduleHeld(); }

  const handlers = {
    hello(msg) {
      S.hello = msg;
      const m = msg.model;
      $("model-name").textContent = `${m.path} · ${m.kind} · ${m.env_id || "unknown env"} · ` +
        `${m.frame_size}x${m.frame_size}, context ${m.context_length} frames`;
      buildActions(msg.actions);
      const sel = $("sampler-steps");
      sel.innerHTML = "";
      sel.add(new Option("as saved", ""));
      if (msg.sampler_steps.available) {
        for (let n = 1; n <= Math.min(8, msg.sampler_steps.max); n++) sel.add(new Option(String(n), String(n)));
      }
      sel.disabled = !msg.sampler_steps.available;
      sel.title = msg.sampler_steps.available ? "" : "this kind of world model has no sampler steps";
      for (const f of ["mp4", "gif"]) {
        $(`download-${f}`).href = `/rollout?session=${encodeURIComponent(msg.session)}&format=${f}`;
      }
    },
    frame(msg) {
      S.framesReceived += 1;
      S.modelMsTotal += msg.model_ms;
      S.steps = msg.step;
      const now = performance.now();
      S.frameTimes.push(now);
      while (S.frameTimes.length && now - S.frameTimes[0] > 1000) S.frameTimes.shift();
      const size = msg.size;
      draw($("frame"), msg.frame, size);
      $("fps").textContent = String(S.frameTimes.length);
      $("steps").textContent = String(msg.step);
      $("model-ms").textContent = fmt(msg.model_ms, 1);
      $("reward").textContent = fmt(msg.reward);
      $("return").textContent = fmt(msg.total_reward);
      $("termination").textContent = fmt(msg.termination_prob);
      $("termination-meter").value = msg.termination_prob || 0;
      $("ended").hidden = !msg.terminated;
      $("source").textContent = msg.source;
      $("real-toggle").checked = msg.real_on;
      const real = msg.real;
      $("real-figure").hidden = !real;
      $("real-stats").hidden = !real;
      if (real) {
        draw($("real-frame"), real.frame, size);
        $("real-reward").textContent = fmt(real.reward);
        $("real-return").textContent = fmt(real.total_reward);
        $("real-ended").hidden = !real.terminated;
      }
      replied();
    },
    options(msg) {
      $("sampler-steps").value = msg.sampler_steps === null ? "" : String(msg.sampler_steps);
      $("real-toggle").checked = msg.real_on;
      if (!msg.real_on) { $("real-figure").hidden = true; $("real-stats").hidden = true; }
      status(`sampler steps: ${msg.sampler_steps === null ? "as saved" : msg.sampler_steps}`);
      replied();
    },
    error(msg) {
      showError(msg.message);
      replied();
    },
  };

  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    S.ws = ws;
    S.pending = 1;  // the server sends the first frame (a random real context) by itself
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { showError(`bad message from the server: ${e}`); return; }
      const h = handlers[msg.type];
      if (h) h(msg);
    };
    ws.onopen = () => status("connected");
    ws.onclose = () => { status("disconnected from the server: reload the page to start again"); S.pending = 0; };
  }

  function showError(text) {
    const box = $("error");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(S.errorTimer);
    S.errorTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }
  function status(text) { $("status").textContent = text; }

  // ------------------------------------------------------------------------------------------- acting
  // S.held: the action of the key/button held down (repeats); S.queued: a press not yet stepped (a quick tap
  // still takes its one step even when it is released before the previous frame arrives).
  function step(action) {
    if (S.pending > 0) { S.queued = action; return; }  // the frame handler sends it when the reply arrives
    S.queued = null;
    send({ type: "step", action });
  }
  function scheduleHeld() {
    const next = S.held !== null ? S.held : S.queued;
    if (next === null || S.pending > 0 || S.timer !== null) return;
    const wait = Math.max(0, S.lastSent + S.minInterval - performance.now());
    S.timer = setTimeout(() => {
      S.timer = null;
      const a = S.held !== null ? S.held : S.queued;
      if (a !== null) step(a);
    }, wait);
  }
  function hold(action) {
    S.held = action;
    S.queued = action;
    for (const [id, b] of S.buttons) b.classList.toggle("held", id === action);
    scheduleHeld();
  }
  function release(action) {
    if (action !== undefined && S.held !== action) return;
    S.held = null;
    for (const b of S.buttons.values()) b.classList.remove("held");
  }
  function reset() { release(); S.queued = null; send({ type: "reset" }); }

  const keyLabel = (k) => ({ " ": "Space", ArrowLeft: "←", ArrowRight: "→", ArrowUp: "↑", ArrowDown: "↓" }[k] || k);
  function buildActions(actions) {
    const box = $("actions");
    box.innerHTML = "";
    S.keys.clear(); S.buttons.clear();
    for (const a of actions) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.action = String(a.id);
      const label = document.createElement("span");
      label.className = "meaning";
      label.textContent = a.meaning;
      b.appendChild(label);
      const k = document.createElement("kbd");
      k.textContent = a.keys.map(keyLabel).join(" ");
      b.appendChild(k);
      b.addEventListener("pointerdown", (e) => { e.preventDefault(); hold(a.id); });
      for (const ev of ["pointerup", "pointerleave", "pointercancel"]) b.addEventListener(ev, () => release(a.id));
      box.appendChild(b);
      S.buttons.set(a.id, b);
      for (const key of a.keys) S.keys.set(key.length === 1 ? key.toLowerCase() : key, a.id);
    }
  }

  document.addEventListener("keydown", (e) => {
    const tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" && e.target.type !== "checkbox") return;
    if (e.key === "Escape") { e.preventDefault(); reset(); return; }
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (!S.keys.has(key)) return;
    e.preventDefault();  // arrows / space would scroll the page or change a focused select
    if (e.repeat) return;  // we repeat by ourselves, paced by the model
    hold(S.keys.get(key));
  });
  document.addEventListener("keyup", (e) => {
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (S.keys.has(key)) release(S.keys.get(key));
  });
  window.addEventListener("blur", () => release());

  // ----------------------------------------------------------------------------------------- controls
  $("reset").addEventListener("click", reset);
  $("real-toggle").addEventListener("change", (e) => send({ type: "real", on: e.target.checked }));
  $("sampler-steps").addEventListener("change", (e) => {
    send({ type: "sampler_steps", steps: e.target.value === "" ? null : Number(e.target.value) });
    e.target.blur();
  });
  $("speed").addEventListener("change", (e) => {
    const fps = Number(e.target.value);
    S.minInterval = fps > 0 ? 1000 / fps : 0;
    e.target.blur();
  });
  $("upload").addEventListener("change", async (e) => {
    const limit = S.hello ? S.hello.max_image_bytes : Infinity;
    const K = S.hello ? S.hello.model.context_length : Infinity;
    const files = Array.from(e.target.files).sort((a, b) => a.name.localeCompare(b.name));
    e.target.value = "";
    if (files.length > K) { showError(`choose at most ${K} images (the model's context length)`); return; }
    const big = files.find((f) => f.size > limit);
    if (big) { showError(`${big.name} is larger than the ${limit / 1048576} MB limit`); return; }
    const urls = await Promise.all(files.map((f) => new Promise((ok, fail) => {
      const r = new FileReader();
      r.onload = () => ok(r.result);
      r.onerror = () => fail(r.error);
      r.readAsDataURL(f);
    })));
    release();
    send({ type: "upload", images: urls });
  });

  // Hooks for tests and bench/play_fps.py: counters as the page sees them, and raw messages.
  window.vidworldPlay = {
    sendRaw,
    stats: () => ({ framesReceived: S.framesReceived, steps: S.steps, fps: S.frameTimes.length,
                    modelMsTotal: S.modelMsTotal,
                    pending: S.pending, now: performance.now() }),
    setSpeed: (fps) => { S.minInterval = fps > 0 ? 1000 / fps : 0; },
    hello: () => S.hello,
  };

  connect();
})();
