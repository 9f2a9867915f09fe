// nst-web's page: choose images, set the options (defaults and help come from the server, which takes them from
// StylizeOptions), start a run, follow it over server-sent events (preview, J and its terms, a loss plot).
"use strict";

const $ = (id) => document.getElementById(id);

// A per-tab id: sessionStorage survives a reload of this tab, and every tab has its own.
function newSession() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
const session = sessionStorage.getItem("nst-session") || newSession();
sessionStorage.setItem("nst-session", session);

let config = null;
let content = null;  // a File or Blob
let styles = [];     // [{file, name, mask, source_mask}]: the masks are {file, name} or undefined
let current = null;  // the job this tab follows
const runs = new Map();  // job id -> summary
let series = [];     // [[step, J, stage]] of the current job

const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toPrecision(4));

function say(text) { $("message").textContent = text || ""; }

// --- images -----------------------------------------------------------------------------------------------------

function thumb(file, name) {
  const div = document.createElement("div");
  const img = document.createElement("img");
  img.src = URL.createObjectURL(file);
  div.append(img, " ", Object.assign(document.createElement("span"), { className: "name", textContent: name }));
  return div;
}

function setContent(file, name) {
  content = { file, name };
  $("content-list").replaceChildren(thumb(file, name));
}

// Per style, optional masks: "mask" (where on the output this style goes, in the content's frame) and "source mask"
// (which part of this style image to take the style from); grey levels, white = this style.
const MASKS = { mask: "mask", source_mask: "source mask" };

function maskPicker(s, i, field) {
  const label = Object.assign(document.createElement("label"), { className: "mask" });
  const input = Object.assign(document.createElement("input"),
    { type: "file", accept: "image/*", id: `${field}-${i}`, className: field });
  input.onchange = (e) => { const f = e.target.files[0]; if (f) { s[field] = { file: f, name: f.name }; addStyles([]); } };
  label.append(`${MASKS[field]} `, input);
  if (s[field]) {  // chosen: its thumbnail and name, and × to drop it, instead of the picker
    const x = Object.assign(document.createElement("button"), { type: "button", textContent: "×" });
    x.onclick = (e) => { e.preventDefault(); delete s[field]; addStyles([]); };
    input.classList.add("hidden");
    label.append(thumb(s[field].file, s[field].name), x);
  }
  return label;
}

function addStyles(files) {
  for (const f of files) {
    if (styles.length >= config.max_styles) { say(`at most ${config.max_styles} styles`); break; }
    styles.push({ file: f, name: f.name || "style.png" });
  }
  $("style-list").replaceChildren(...styles.map((s, i) => {
    const div = thumb(s.file, s.name);
    const x = Object.assign(document.createElement("button"), { type: "button", textContent: "×" });
    x.onclick = () => { styles.splice(i, 1); addStyles([]); };
    div.append(x, ...Object.keys(MASKS).map((field) => maskPicker(s, i, field)));
    return div;
  }));
}

function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles([...e.dataTransfer.files]);
  });
}

async function example(name) {
  const r = await fetch(`/api/examples/${name}.png`);
  if (!r.ok) { say((await r.json()).error); return null; }
  return new File([await r.blob()], `example-${name}.png`, { type: "image/png" });
}

// --- options ----------------------------------------------------------------------------------------------------

function field(name, input, note) {
  const label = document.createElement("label");
  const help = config.options[name].help;
  label.title = help;
  label.append(name.replace("_", " "), " ", Object.assign(document.createElement("span"), { textContent: note || "" }));
  input.name = name;
  input.title = help;
  $("options").append(label, input);
  return input;
}

function buildForm() {
  const o = config.options;
  const num = (name, step) => field(name, Object.assign(document.createElement("input"),
    { type: "number", value: o[name].default, step: step, min: step }));
  num("size", 1);
  num("iterations", 1);
  // style weight: a slider over the model's beta x 0.01..100, log scale; the form sends the weight itself
  const beta = o.style_weight.default;
  const slider = Object.assign(document.createElement("input"), { type: "range", min: -2, max: 2, step: 0.05, value: 0 });
  const shown = document.createElement("span");
  const hidden = Object.assign(document.createElement("input"), { type: "hidden", name: "style_weight" });
  const update = () => {
    const m = 10 ** Number(slider.value);
    hidden.value = String(beta * m);
    shown.textContent = ` ×${m.toPrecision(2)} = ${(beta * m).toPrecision(3)}`;
  };
  slider.oninput = update;
  update();
  field("style_weight", slider, "(× the model's β)").after(shown, hidden);
  slider.name = "";
  for (const name of ["preserve_colors", "init"]) {
    const select = document.createElement("select");
    for (const c of o[name].choices) select.append(new Option(c, c, c === o[name].default, c === o[name].default));
    field(name, select);
  }
  num("style_scale", 0.05);
}

// --- runs -------------------------------------------------------------------------------------------------------

async function start() {
  say("");
  if (!content) { say("choose a content image"); return; }
  if (!styles.length) { say("choose at least one style image"); return; }
  const form = new FormData($("options"));
  form.append("session", session);
  form.append("content", content.file, content.name);
  styles.forEach((s, i) => {
    form.append("style", s.file, s.name);
    for (const field of Object.keys(MASKS)) if (s[field]) form.append(`${field}${i}`, s[field].file, s[field].name);
  });
  $("start").disabled = true;
  try {
    const r = await fetch("/api/jobs", { method: "POST", body: form });
    const answer = await r.json();
    if (!r.ok) {
      say(answer.error);
      if (answer.fits) offerSize(answer.fits);
      return;
    }
    follow(answer.job);
  } catch (e) {
    say(`the server did not answer (${e}); is nst-web still running?`);
  } finally {
    $("start").disabled = false;
  }
}

function offerSize(size) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: `use size ${size}` });
  b.onclick = () => { document.querySelector("[name=size]").value = size; say(""); };
  $("message").append(" ", b);
}

function follow(job) {
  current = job;
  series = [];
  drawPlot();
  $("preview").removeAttribute("src");
  $("download-png").classList.add("hidden");
  $("download-log").classList.add("hidden");
  $("stop").disabled = false;
  const r = runs.get(job);
  if (r && r.result) showResult(job);
  renderRuns();
}

function showResult(job) {
  $("download-png").href = `/api/jobs/${job}/result.png`;
  $("download-log").href = `/api/jobs/${job}/log.json`;
  $("download-png").classList.remove("hidden");
  $("download-log").classList.remove("hidden");
  $("preview").src = `/api/jobs/${job}/result.png`;
}

function renderRuns() {
  $("runs").replaceChildren(...[...runs.values()].reverse().map((r) => {
    const div = document.createElement("div");
    div.className = "run" + (r.job === current ? " current" : "");
    div.dataset.job = r.job;
    const img = document.createElement("img");
    if (r.result) img.src = `/api/jobs/${r.job}/thumb.jpg`;
    else if (r.job === current && $("preview").src.startsWith("data:")) img.src = $("preview").src;
    const where = r.state === "queued" && r.position > 0 ? ` #${r.position} in queue` : "";
    div.append(img, `${r.content} × ${r.styles.join(", ")} · ${r.size} px · ${r.state}${where}`);
    if (r.error) div.append(Object.assign(document.createElement("div"), { textContent: r.error }));
    div.onclick = () => follow(r.job);
    return div;
  }));
}

function onEvent(e) {
  if (e.type === "runs") {
    for (const r of e.runs) runs.set(r.job, r);
    renderRuns();
    return;
  }
  const r = runs.get(e.job) || { job: e.job, content: "", styles: [], size: "", state: "queued" };
  runs.set(e.job, r);
  if (e.type === "state") {
    Object.assign(r, e);
    renderRuns();
    if (e.job !== current) return;
    if (e.state === "queued") $("status").textContent = `waiting: #${e.position} in the queue`;
    else if (e.state === "running" && !series.length) $("status").textContent = "planning…";
    else if (["done", "stopped", "failed", "cancelled"].includes(e.state)) {
      $("stop").disabled = true;
      if (e.error) { say(e.error); if (e.fits) offerSize(e.fits); }
      $("status").textContent += `\n${e.state}`;
    }
    return;
  }
  if (e.job !== current) return;
  if (e.type === "progress") {
    series.push([e.step, e.loss, e.stage]);
    const t = e.terms;
    $("status").textContent =
      `stage ${e.stage}/${e.stages} · ${e.size[1]}×${e.size[0]} px · iteration ${e.iteration}/${e.iterations}\n` +
      `J ${fmt(e.loss)} = content ${fmt(t.content)} + style ${fmt(t.style)} + tv ${fmt(t.tv)}`;
    drawPlot();
  } else if (e.type === "preview") {
    const img = $("preview");
    img.src = e.image;
    img.dataset.frames = String(Number(img.dataset.frames) + 1);
    const card = document.querySelector(`.run[data-job="${e.job}"] img`);
    if (card && !r.result) card.src = e.image;  // the running card shows the latest preview
  } else if (e.type === "result") {
    r.result = e;
    showResult(e.job);
  }
}

// --- the loss plot: log10 J against the iteration over all stages, one colour per stage --------------------------

function drawPlot() {
  const svg = $("plot");
  svg.replaceChildren();
  const pts = series.filter((p) => p[1] > 0);
  if (pts.length < 2) return;
  const ns = "http://www.w3.org/2000/svg";
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => Math.log10(p[1]));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const X = (x) => 40 + 550 * (x - x0) / Math.max(1, x1 - x0);
  const Y = (y) => 10 + 125 * (y1 - y) / Math.max(1e-9, y1 - y0);
  const colours = ["#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa"];
  for (const stage of new Set(pts.map((p) => p[2]))) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.filter((p) => p[2] === stage).map((p) => `${X(p[0])},${Y(Math.log10(p[1]))}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colours[(stage - 1) % colours.length]);
    line.setAttribute("stroke-width", "2");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
  for (const [y, v] of [[10, y1], [135, y0]]) {
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", 2);
    text.setAttribute("y", y + 4);
    text.setAttribute("font-size", "10");
    text.textContent = (10 ** v).toPrecision(3);
    svg.append(text);
  }
}

// --- wiring -----------------------------------------------------------------------------------------------------

async function main() {
  config = await (await fetch("/api/config")).json();
  $("model").textContent = `model ${config.model} on ${config.provider} · up to ${config.max_upload_mb} MB per image`;
  buildForm();
  $("content-file").onchange = (e) => e.target.files[0] && setContent(e.target.files[0], e.target.files[0].name);
  $("style-file").onchange = (e) => addStyles([...e.target.files]);
  dropZone($("content-drop"), (files) => files[0] && setContent(files[0], files[0].name));
  dropZone($("style-drop"), addStyles);
  $("content-example").onclick = async () => { const f = await example("content"); if (f) setContent(f, f.name); };
  $("style-example").onclick = async () => { const f = await example("style"); if (f) addStyles([f]); };
  $("start").onclick = start;
  $("stop").onclick = () => current && fetch(`/api/jobs/${current}/stop`, { method: "POST" });
  const events = new EventSource(`/api/sessions/${session}/events`);
  events.onmessage = (m) => onEvent(JSON.parse(m.data));
  events.onerror = () => say("lost the connection to the server; it reconnects when the server is back");
  events.onopen = () => say("");
}

main();
