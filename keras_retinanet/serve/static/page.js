// retinanet-serve's page: send an image to /predict, draw what comes back, filter it here.
// Plain JavaScript, no libraries: the page works offline. URLs are relative, so that it works behind a path prefix.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const context = canvas.getContext("2d");
  const slider = $("threshold");

  const state = {
    model: null,        // GET /model
    image: null,        // the HTMLImageElement drawn
    file: null,         // the File sent
    result: null,       // POST /predict's JSON
    hidden: new Set(),  // class names switched off
  };

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", Boolean(isError));
  }

  // A colour per label: hues spread by the golden angle, so that neighbouring labels differ.
  function colour(label) {
    const hue = (label * 137.508 + 200) % 360;
    return `hsl(${hue.toFixed(0)}, 85%, 45%)`;
  }

  function threshold() {
    return Number(slider.value);
  }

  // The detections shown: scores strictly above the threshold (as the server filters), of classes switched on.
  function shown() {
    const result = state.result;
    const rows = [];
    if (!result) return rows;
    const limit = threshold();
    for (let i = 0; i < result.scores.length; i++) {
      if (result.scores[i] > limit && !state.hidden.has(result.names[i])) rows.push(i);
    }
    return rows;
  }

  function classNames() {
    const names = [];
    const seen = new Set();
    const add = (name, label) => {
      if (!seen.has(name)) { seen.add(name); names.push({ name, label }); }
    };
    if (state.model) state.model.class_names.forEach((name, label) => add(name, label));
    if (state.result) state.result.names.forEach((name, i) => add(name, state.result.labels[i]));
    return names;
  }

  function renderCounts(rows) {
    const limit = threshold();
    const counts = new Map();
    if (state.result) {
      state.result.scores.forEach((score, i) => {
        if (score > limit) counts.set(state.result.names[i], (counts.get(state.result.names[i]) || 0) + 1);
      });
    }
    const body = document.querySelector("#classes tbody");
    body.textContent = "";
    for (const { name, label } of classNames()) {
      const row = document.createElement("tr");
      row.dataset.name = name;
      row.classList.toggle("off", state.hidden.has(name));
      const toggle = document.createElement("input");
      toggle.type = "checkbox";
      toggle.checked = !state.hidden.has(name);
      toggle.setAttribute("aria-label", `show ${name}`);
      toggle.addEventListener("change", () => {
        if (toggle.checked) state.hidden.delete(name); else state.hidden.add(name);
        render();
      });
      const show = document.createElement("td");
      show.appendChild(toggle);
      const title = document.createElement("td");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour(label);
      title.append(swatch, name);
      const count = document.createElement("td");
      count.className = "count";
      count.textContent = String(counts.get(name) || 0);
      row.append(show, title, count);
      body.appendChild(row);
    }
    $("total-count").textContent = String(rows.length);
    $("total-label").textContent = rows.length === 1 ? "object shown" : "objects shown";
  }

  function render() {
    $("threshold-value").textContent = threshold().toFixed(2);
    if (!state.image) return;
    const rows = shown();
    // Drawn at the screen's resolution (not the image's), so that names and scores are sharp at any image size.
    const ratio = window.devicePixelRatio || 1;
    const display = fit();
    canvas.width = Math.max(1, Math.round(display.width * ratio));
    canvas.height = Math.max(1, Math.round(display.height * ratio));
    const k = canvas.width / state.image.naturalWidth;  // image pixels to canvas pixels
    context.drawImage(state.image, 0, 0, canvas.width, canvas.height);
    const lineWidth = 2 * ratio;
    const fontSize = Math.round(12 * ratio);
    const pad = 2 * ratio;
    context.font = `600 ${fontSize}px system-ui, sans-serif`;
    context.textBaseline = "top";
    const result = state.result;
    const labels = $("show-labels").checked;
    // Worst first, so that the best boxes are drawn on top.
    for (let n = rows.length - 1; n >= 0; n--) {
      const i = rows[n];
      const [x1, y1, x2, y2] = result.boxes[i].map((value) => value * k);
      const hue = colour(result.labels[i]);
      context.lineWidth = lineWidth;
      context.strokeStyle = hue;
      context.strokeRect(x1, y1, x2 - x1, y2 - y1);
      if (labels) {
        const text = `${result.names[i]} ${result.scores[i].toFixed(2)}`;
        const width = context.measureText(text).width + 2 * pad;
        const height = fontSize + 1.5 * pad;
        const top = y1 - height >= 0 ? y1 - height : y1;
        context.fillStyle = hue;
        context.fillRect(x1, top, width, height);
        context.fillStyle = "#fff";
        context.fillText(text, x1 + pad, top + 0.75 * pad);
      }
    }
    canvas.dataset.drawn = String(rows.length);
    renderCounts(rows);
  }

  // The image as large as the viewer lets it be (small images enlarged up to 4x), its whole height on the screen:
  // the size it is shown at, in CSS pixels.
  function fit() {
    const image = state.image;
    const viewer = $("viewer");
    const width = Math.max(1, viewer.clientWidth - 2);
    const top = viewer.getBoundingClientRect().top + window.scrollY;
    const height = Math.max(320, window.innerHeight - top - 16);
    const factor = Math.min(width / image.naturalWidth, height / image.naturalHeight, 4);
    const display = {
      width: Math.max(1, Math.floor(image.naturalWidth * factor)),
      height: Math.max(1, Math.floor(image.naturalHeight * factor)),
    };
    canvas.style.width = `${display.width}px`;
    canvas.style.height = `${display.height}px`;
    return display;
  }

  function describeModel(model) {
    const range = model.image_min_side === model.image_max_side ? `${model.image_min_side}`
      : `${model.image_min_side}-${model.image_max_side}`;
    const sides = model.resize === false ? "images at their own size" : `images resized to ${range} px`;
    const classes = model.class_names.length;
    $("model-line").textContent = `${model.model}: ${model.backbone}, ${classes} class${classes === 1 ? "" : "es"}, ` +
      `${sides}; scores above ${model.defaults.score_threshold ?? model.defaults.filter_threshold}, at most ` +
      `${model.defaults.max_detections} an image`;
    const lowest = Number(model.defaults.score_threshold ?? model.defaults.filter_threshold ?? 0.05);
    slider.min = String(Math.max(0, Math.min(0.99, lowest)).toFixed(2));
    if (Number(slider.value) < Number(slider.min)) slider.value = slider.min;
  }

  function offerTiles(image) {
    const model = state.model;
    if (!model) return;
    const side = model.resize === false ? 0 : model.image_max_side;
    const large = side > 0 && Math.max(image.naturalWidth, image.naturalHeight) > 1.5 * side;
    $("tile-options").hidden = !large && !$("tile-enable").checked;
    if (!large) return;
    const tile = model.tile ? Math.max(...model.tile) : model.image_min_side;
    $("tile-size").value = String(tile);
    $("tile-hint").textContent = `This image is ${image.naturalWidth}x${image.naturalHeight} px; the model sees ` +
      `it shrunk to ${model.image_max_side} px at most, where small objects vanish. Tiles of ${tile} px are each ` +
      "seen at the model's scale.";
  }

  async function detect() {
    if (!state.file) return;
    const parameters = new URLSearchParams();
    if ($("tile-enable").checked && !$("tile-options").hidden) {
      parameters.set("tile", $("tile-size").value);
      if ($("tile-overlap").value !== "auto") parameters.set("tile_overlap", $("tile-overlap").value);
      if ($("tile-merge").value !== "auto") parameters.set("tile_merge", $("tile-merge").value);
    }
    setStatus(`detecting objects in ${state.file.name || "the image"}\u2026`);
    $("download").disabled = true;
    const started = performance.now();
    let response;
    try {
      response = await fetch("predict" + (parameters.toString() ? "?" + parameters : ""), {
        method: "POST",
        headers: { "Content-Type": state.file.type || "application/octet-stream" },
        body: state.file,
      });
    } catch (error) {
      setStatus(`the server did not answer: ${error}`, true);
      return;
    }
    let body;
    try {
      body = await response.json();
    } catch (error) {
      body = { error: `${response.status} ${response.statusText}` };
    }
    if (!response.ok) {
      setStatus(`${response.status}: ${body.error || response.statusText}`, true);
      return;
    }
    state.result = body;
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const timing = response.headers.get("Server-Timing") || "";
    $("timing").textContent = `${body.scores.length} detections in ${seconds} s` + (timing ? ` (${timing})` : "");
    const limit = state.model ? state.model.defaults.max_detections : null;
    const tiled = parameters.has("tile");
    $("capped").hidden = !body.capped;
    $("capped").textContent = `A cap bound: the model keeps at most ${limit} detections ` +
      `${tiled ? "for each tile" : "an image"}, and found more here (retinanet-serve --max-detections N` +
      `${tiled ? "" : ", or tiles"}).`;
    setStatus(`${state.file.name || "image"}: ${body.width}x${body.height} px`);
    $("download").disabled = false;
    render();
  }

  function open(file) {
    if (!file) return;
    state.file = file;
    state.result = null;
    $("file-name").textContent = file.name || "";
    $("drop-zone").classList.add("compact");
    const url = URL.createObjectURL(file);
    const image = new Image();
    image.onload = () => {
      state.image = image;
      $("layout").hidden = false;
      canvas.dataset.drawn = "0";
      offerTiles(image);
      render();
      detect();
    };
    image.onerror = () => {
      // Formats the browser does not show (TIFF, ...) are still sent: the server may read them.
      state.image = null;
      setStatus("the browser cannot show this image; sending it anyway");
      detect();
    };
    image.src = url;
  }

  function download() {
    const result = state.result;
    if (!result) return;
    const rows = shown();
    const pick = (values) => rows.map((i) => values[i]);
    const counts = {};
    for (const i of rows) counts[result.names[i]] = (counts[result.names[i]] || 0) + 1;
    const record = {
      image: state.file ? state.file.name : null,
      width: result.width,
      height: result.height,
      score_threshold: threshold(),
      hidden_classes: [...state.hidden],
      boxes: pick(result.boxes),
      scores: pick(result.scores),
      labels: pick(result.labels),
      names: pick(result.names),
      counts,
    };
    const blob = new Blob([JSON.stringify(record, null, 1)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    const stem = (state.file && state.file.name ? state.file.name : "image").replace(/\.[^.]*$/, "");
    link.download = `${stem}.detections.json`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  // Drag and drop anywhere on the page, or the file picker.
  const zone = $("drop-zone");
  ["dragenter", "dragover"].forEach((kind) => document.addEventListener(kind, (event) => {
    event.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "dragend"].forEach((kind) => document.addEventListener(kind, () => zone.classList.remove("over")));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = event.dataTransfer ? event.dataTransfer.files : null;
    if (files && files.length) open(files[0]);
  });
  $("file-input").addEventListener("change", (event) => open(event.target.files[0]));
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("file-input").click(); }
  });
  slider.addEventListener("input", render);
  $("show-labels").addEventListener("change", render);
  $("download").addEventListener("click", download);
  $("rerun").addEventListener("click", detect);
  $("tile-enable").addEventListener("change", detect);
  $("tile-overlap").addEventListener("change", () => { if ($("tile-enable").checked) detect(); });
  $("tile-merge").addEventListener("change", () => { if ($("tile-enable").checked) detect(); });
  window.addEventListener("resize", render);

  fetch("model")
    .then((response) => response.json())
    .then((model) => {
      state.model = model;
      describeModel(model);
      render();
      document.body.dataset.ready = "1";
    })
    .catch((error) => setStatus(`cannot read the model's description: ${error}`, true));
}());
