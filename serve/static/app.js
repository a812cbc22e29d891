// The page of serve/web.py: plain JavaScript, no build step, no library. It only calls the
// HTTP API (/health, /detect, /reconstruct); the mask it sends is the one it shows.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

const state = {
  health: null,
  file: null, // the photo as chosen: sent as it is, so the server keeps its EXIF and profile
  photoUrl: null,
  width: 0,
  height: 0,
  detection: null, // /detect's answer
  off: new Set(), // classes the user switched off
  base: null, // canvas: the detector's hole for the current choice, red on transparent
  strokes: [], // {tool, size, points: [[x, y], ...]} in photo pixels, in order
  drawing: null,
  detectSeq: 0,
  urls: [],
};

function setState(name) {
  document.body.dataset.state = name;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
  if (text) setState("error");
}

function showNotice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

let timer = null;
function busy(text, fraction) {
  $("status").hidden = false;
  $("status-text").textContent = text;
  const bar = $("progress");
  if (fraction === undefined) bar.removeAttribute("value"); // indeterminate
  else bar.value = fraction;
}

function idle() {
  $("status").hidden = true;
  clearInterval(timer);
  timer = null;
}

// The server's `detail` (one sentence, or FastAPI's list of field errors) as one line.
function detailOf(status, text) {
  try {
    const body = JSON.parse(text);
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join("; ");
    }
  } catch (e) {
    // not JSON: a proxy's page, say
  }
  return `the server answered ${status}`;
}

// POST a form with upload progress; resolves with the parsed JSON, rejects with a message.
function post(url, form, label) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    const start = performance.now();
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) busy(`${label}: uploading`, e.loaded / e.total);
    };
    xhr.upload.onload = () => {
      busy(`${label}…`);
      clearInterval(timer);
      timer = setInterval(() => {
        const s = ((performance.now() - start) / 1000).toFixed(0);
        busy(`${label}… ${s} s`);
      }, 1000);
    };
    xhr.onload = () => {
      clearInterval(timer);
      if (xhr.status === 200) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch (e) {
          reject("the server's answer was not JSON");
        }
      } else {
        reject(detailOf(xhr.status, xhr.responseText));
      }
    };
    xhr.onerror = () => reject("the server did not answer (is it still running?)");
    busy(`${label}…`, 0);
    xhr.send(form);
  });
}

function blobUrl(base64, type) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  state.urls.push(url);
  return url;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("not decodable"));
    img.src = url;
  });
}

function classColour(name) {
  return state.health.colours[name] || "#ffffff"; // the CLI's overlay colours
}

// ---- choosing a photo ---------------------------------------------------------------------

async function choose(file) {
  if (!file) return;
  showError("");
  showNotice("");
  const limits = state.health.limits;
  if (file.size > limits.max_bytes) {
    showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB; this server takes up to ` +
      `${(limits.max_bytes / 2 ** 20).toFixed(0)} MiB`);
    return;
  }
  for (const url of state.urls) URL.revokeObjectURL(url);
  state.urls = [];
  Object.assign(state, { file, detection: null, strokes: [], off: new Set(), base: null });
  $("result").hidden = true;
  $("downloads").hidden = true;
  $("editor").hidden = true;
  $("found").hidden = true;
  $("tools").hidden = true;
  state.photoUrl = URL.createObjectURL(file);
  state.urls.push(state.photoUrl);
  let img;
  try {
    img = await loadImage(state.photoUrl);
  } catch (e) {
    img = null; // the browser cannot show it (TIFF, say); the server may still read it
  }
  await detect(img);
}

function form(extra) {
  const data = new FormData();
  data.append("photo", state.file, state.file.name);
  for (const [k, v] of Object.entries(extra)) data.append(k, v);
  return data;
}

function choice() {
  const classes = state.health.classes.filter((c) => !state.off.has(c));
  return {
    classes: classes.length ? classes.join(",") : "none", // an empty field would mean all
    threshold: $("threshold").value,
    dilate: String(Math.max(0, Math.min(64, parseInt($("dilate").value, 10) || 0))),
  };
}

async function detect(img) {
  const seq = ++state.detectSeq;
  setState("detecting");
  let answer;
  try {
    answer = await post("/detect", form(choice()), "Finding faces and occluders");
  } catch (message) {
    if (seq === state.detectSeq) {
      idle();
      showError(message);
      $("run").disabled = !state.detection;
    }
    return;
  }
  if (seq !== state.detectSeq) return; // a newer choice is on its way
  idle();
  if (!state.detection) {
    const [w, h] = answer.size_wh;
    if (!img) {
      showError("this browser cannot show the photo; convert it to PNG or JPEG");
      return;
    }
    if (img.naturalWidth !== w || img.naturalHeight !== h) {
      showError(`the browser shows this photo at ${img.naturalWidth}x${img.naturalHeight} but ` +
        `the server reads ${w}x${h}; save it upright as PNG or JPEG and try again`);
      return;
    }
    setupEditor(img, w, h);
  }
  const first = !state.detection;
  state.detection = answer;
  showNotice(answer.message);
  await setBase(answer.mask);
  drawOutlines();
  if (first) buildToggles();
  summarize();
  $("run").disabled = false;
  setState("ready");
}

function setupEditor(img, w, h) {
  state.width = w;
  state.height = h;
  for (const id of ["photo-canvas", "mask-canvas"]) {
    $(id).width = w;
    $(id).height = h;
  }
  $("photo-canvas").getContext("2d").drawImage(img, 0, 0);
  $("outlines").setAttribute("viewBox", `0 0 ${w} ${h}`);
  const side = Math.min(w, h);
  $("brush-size").max = String(Math.max(4, Math.round(side / 4)));
  $("brush-size").value = String(Math.max(2, Math.round(side / 25)));
  $("brush-size-value").value = $("brush-size").value;
  $("editor").hidden = false;
  $("found").hidden = false;
  $("tools").hidden = false;
}

// The detector's hole (white on black PNG) as red on transparent, under the user's strokes.
async function setBase(maskBase64) {
  const img = await loadImage("data:image/png;base64," + maskBase64);
  const canvas = document.createElement("canvas");
  canvas.width = state.width;
  canvas.height = state.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const d = pixels.data;
  for (let i = 0; i < d.length; i += 4) {
    const on = d[i] > 127;
    d[i] = 255;
    d[i + 1] = 0;
    d[i + 2] = 0;
    d[i + 3] = on ? 255 : 0;
  }
  ctx.putImageData(pixels, 0, 0);
  state.base = canvas;
  renderMask();
}

function drawStroke(ctx, stroke) {
  ctx.globalCompositeOperation = stroke.tool === "eraser" ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = "rgb(255, 0, 0)";
  ctx.lineWidth = stroke.size;
  ctx.lineCap = ctx.lineJoin = "round";
  const [x0, y0] = stroke.points[0];
  ctx.beginPath();
  if (stroke.points.length === 1) {
    ctx.arc(x0, y0, stroke.size / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.moveTo(x0, y0);
  for (const [x, y] of stroke.points.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
}

function renderMask() {
  const ctx = $("mask-canvas").getContext("2d");
  ctx.globalCompositeOperation = "source-over";
  ctx.clearRect(0, 0, state.width, state.height);
  if (state.base) ctx.drawImage(state.base, 0, 0);
  for (const stroke of state.strokes) drawStroke(ctx, stroke);
  if (state.drawing) drawStroke(ctx, state.drawing);
  ctx.globalCompositeOperation = "source-over";
  $("undo").disabled = $("reset").disabled = state.strokes.length === 0;
}

// The mask to send: white where the shown mask is (alpha > 127), black elsewhere.
function maskBlob() {
  const src = $("mask-canvas").getContext("2d").getImageData(0, 0, state.width, state.height);
  const canvas = document.createElement("canvas");
  canvas.width = state.width;
  canvas.height = state.height;
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(state.width, state.height);
  for (let i = 0; i < src.data.length; i += 4) {
    const v = src.data[i + 3] > 127 ? 255 : 0;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
    out.data[i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

function isChosen(d) {
  return !state.off.has(d.category) && d.score >= parseFloat($("threshold").value);
}

function drawOutlines() {
  const svg = $("outlines");
  svg.replaceChildren();
  const size = Math.max(12, Math.round(Math.min(state.width, state.height) / 32));
  for (const face of state.detection.faces) {
    const [x, y, w, h] = face.box_xywh;
    const rect = document.createElementNS(SVG, "rect");
    for (const [k, v] of Object.entries({ x, y, width: w, height: h })) rect.setAttribute(k, v);
    rect.setAttribute("stroke", face.aligned ? "#00ff00" : "#ffff00");
    rect.setAttribute("class", "face");
    svg.append(rect);
    for (const d of face.detections) {
      const colour = classColour(d.category);
      const group = document.createElementNS(SVG, "g");
      group.setAttribute("class", "detection" + (isChosen(d) ? "" : " off"));
      group.dataset.category = d.category;
      for (const ring of d.outline) {
        const poly = document.createElementNS(SVG, "polygon");
        poly.setAttribute("points", ring.map((p) => p.join(",")).join(" "));
        poly.setAttribute("stroke", colour);
        if (!isChosen(d)) poly.setAttribute("class", "off");
        group.append(poly);
      }
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", d.box_xyxy[0]);
      label.setAttribute("y", Math.max(size, d.box_xyxy[1] - 3));
      label.setAttribute("fill", colour);
      label.setAttribute("font-size", size);
      label.textContent = `${d.category} ${d.score.toFixed(2)}`;
      group.append(label);
      if (!isChosen(d)) label.remove(); // dashed, unlabelled: found but kept
      svg.append(group);
    }
  }
}

function summarize() {
  const faces = state.detection.faces;
  const all = faces.flatMap((f) => f.detections);
  $("faces-summary").textContent = faces.length
    ? `${faces.length} face(s); ${all.filter(isChosen).length} of ${all.length} outlines chosen`
    : "no face found";
}

// The toggles, made once per photo: one per class found, with its best score.
function buildToggles() {
  const best = new Map();
  for (const face of state.detection.faces) {
    for (const d of face.detections) {
      best.set(d.category, Math.max(best.get(d.category) || 0, d.score));
    }
  }
  const box = $("classes");
  box.replaceChildren();
  for (const [name, score] of [...best.entries()].sort((a, b) => b[1] - a[1])) {
    const label = document.createElement("label");
    const toggle = document.createElement("input");
    toggle.type = "checkbox";
    toggle.checked = !state.off.has(name);
    toggle.dataset.category = name;
    toggle.addEventListener("change", () => {
      if (toggle.checked) state.off.delete(name);
      else state.off.add(name);
      rechoose();
    });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = classColour(name);
    const scoreText = document.createElement("span");
    scoreText.className = "score";
    scoreText.textContent = score.toFixed(2);
    label.append(toggle, swatch, document.createTextNode(name), scoreText);
    box.append(label);
  }
}

// A new choice of classes, threshold or growth: the outlines at once, the mask from the server.
let rechooseTimer = null;
function rechoose() {
  if (!state.detection) return;
  drawOutlines();
  summarize();
  $("run").disabled = true;
  setState("detecting"); // until the new mask is in
  clearTimeout(rechooseTimer);
  rechooseTimer = setTimeout(() => detect(null).catch(() => {}), 300);
}

// ---- painting -----------------------------------------------------------------------------

function photoPoint(event) {
  const rect = $("mask-canvas").getBoundingClientRect();
  return [
    ((event.clientX - rect.left) * state.width) / rect.width,
    ((event.clientY - rect.top) * state.height) / rect.height,
  ];
}

function startStroke(event) {
  if (!state.detection || event.button !== 0) return;
  event.preventDefault();
  $("mask-canvas").setPointerCapture(event.pointerId);
  const tool = document.querySelector("input[name=tool]:checked").value;
  state.drawing = { tool, size: parseInt($("brush-size").value, 10), points: [photoPoint(event)] };
  renderMask();
}

function moveStroke(event) {
  if (!state.drawing) return;
  state.drawing.points.push(photoPoint(event));
  renderMask();
}

function endStroke() {
  if (!state.drawing) return;
  state.strokes.push(state.drawing);
  state.drawing = null;
  renderMask();
}

// ---- running ------------------------------------------------------------------------------

async function run() {
  showError("");
  setState("running");
  $("run").disabled = true;
  const fields = { formats: "png,jpeg", compare: "true" };
  const pick = choice();
  if (state.strokes.length) {
    // The mask as shown (the detector's hole already grown): taken as exact.
    fields.mask = await maskBlob();
    fields.dilate = "0";
  } else {
    Object.assign(fields, pick);
  }
  const data = form({});
  for (const [k, v] of Object.entries(fields)) {
    if (k === "mask") data.append("mask", v, "mask.png");
    else data.append(k, v);
  }
  const reference = $("reference").files[0];
  if (reference) data.append("reference", reference, reference.name);
  const start = performance.now();
  let answer;
  try {
    answer = await post("/reconstruct", data, "Reconstructing");
  } catch (message) {
    idle();
    showError(message);
    $("run").disabled = false;
    return;
  }
  idle();
  const seconds = (performance.now() - start) / 1000;
  showResult(answer, seconds);
  $("run").disabled = false;
}

function showResult(answer, seconds) {
  const stem = state.file.name.replace(/\.[^.]*$/, "") || "photo";
  const png = blobUrl(answer.images.png, "image/png");
  const jpeg = blobUrl(answer.images.jpeg, "image/jpeg");
  const mask = blobUrl(answer.mask, "image/png");
  const telea = blobUrl(answer.telea, "image/png");
  $("before").src = $("sbs-input").src = state.photoUrl;
  $("after").src = $("sbs-result").src = png;
  $("sbs-telea").src = telea;
  const links = { "download-png": [png, ".png"], "download-jpeg": [jpeg, ".jpg"] };
  links["download-mask"] = [mask, "_mask.png"];
  for (const [id, [url, suffix]] of Object.entries(links)) {
    $(id).href = url;
    $(id).download = `${stem}_reconstructed${suffix}`;
  }
  const guided = answer.record.faces
    .filter((f) => f.reference)
    .map((f) => `; guided by ${f.reference} (${Math.round(100 * f.reference_cover)} % of the hole)`);
  $("result-message").textContent = answer.message + guided.join("");
  $("result-time").textContent = `(${seconds.toFixed(1)} s)`;
  $("result-time").dataset.seconds = seconds.toFixed(3);
  $("result").hidden = false;
  $("downloads").hidden = false;
  setState("done");
}

// ---- wiring -------------------------------------------------------------------------------

async function init() {
  try {
    const response = await fetch("/health");
    if (!response.ok) throw new Error(String(response.status));
    state.health = await response.json();
  } catch (e) {
    showError("the server's /health did not answer; reload the page when it runs");
    return;
  }
  const h = state.health;
  $("threshold").min = String(h.score_floor);
  $("threshold").value = String(h.threshold);
  $("threshold-value").value = Number(h.threshold).toFixed(2);
  $("limits").textContent = `up to ${(h.limits.max_bytes / 2 ** 20).toFixed(0)} MiB and ` +
    `${(h.limits.max_pixels / 1e6).toFixed(0)} megapixels` +
    (h.detector ? "" : "; this export has no detector: paint what to remove");

  $("file").addEventListener("change", () => choose($("file").files[0]));
  const drop = $("drop");
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    choose(e.dataTransfer.files[0]);
  });
  // A photo dropped anywhere on the page, not only on the drop zone.
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });

  $("threshold").addEventListener("input", () => {
    $("threshold-value").value = Number($("threshold").value).toFixed(2);
    rechoose();
  });
  $("dilate").addEventListener("change", rechoose);
  $("brush-size").addEventListener("input", () => {
    $("brush-size-value").value = $("brush-size").value;
  });
  $("brush-size-value").value = $("brush-size").value;
  $("show-mask").addEventListener("change", () => {
    $("mask-canvas").classList.toggle("hidden-mask", !$("show-mask").checked);
  });
  const canvas = $("mask-canvas");
  canvas.addEventListener("pointerdown", startStroke);
  canvas.addEventListener("pointermove", moveStroke);
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
  $("undo").addEventListener("click", () => {
    state.strokes.pop();
    renderMask();
  });
  $("reset").addEventListener("click", () => {
    state.strokes = [];
    renderMask();
  });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "z" && state.strokes.length) {
      state.strokes.pop();
      renderMask();
    }
  });
  $("run").addEventListener("click", run);
  $("slider").addEventListener("input", () => {
    $("after-clip").style.clipPath = `inset(0 0 0 ${$("slider").value}%)`;
  });
}

init();
