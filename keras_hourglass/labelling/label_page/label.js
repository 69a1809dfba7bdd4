// The labelling page: frames on the left, the frame on a canvas, the joints on the right.
// Every change is sent to the server at once (PUT /api/labels/<frame>), which writes it to the
// project folder; nothing is kept only here except the undo history.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const context = canvas.getContext("2d");
const state = {
  info: null, frame: -1, individual: 0, joint: 0, labels: null, prediction: null,
  image: null, scale: 1, offset: [0, 0], undo: [], drag: null, savedMs: null, pending: 0,
};
window.labelState = state; // read by the browser tests

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function loadProject() {
  try {
    state.info = await api("GET", "/api/project");
    showError(null);
  } catch (error) {
    showError(error.message);
    return;
  }
  $("project").textContent = `${state.info.folder} (${state.info.skeleton.name}, ` +
    `${state.info.skeleton.joints.length} joints)`;
  drawFrameList();
  drawRounds();
  if (state.frame < 0 && state.info.frames.length) await openFrame(0);
}

function complete(frame) {
  return frame.placed >= state.info.joints_per_frame;
}

function drawFrameList() {
  const list = $("frames");
  list.innerHTML = "";
  state.info.frames.forEach((frame, i) => {
    const item = document.createElement("li");
    item.textContent = `${frame.id} (${frame.placed}/${state.info.joints_per_frame})`;
    item.dataset.frame = frame.id;
    if (i === state.frame) item.classList.add("current");
    if (complete(frame)) item.classList.add("done");
    else if (frame.prefilled) item.classList.add("prefilled");
    item.onclick = () => openFrame(i);
    list.appendChild(item);
  });
}

function drawRounds() {
  $("rounds").innerHTML = state.info.rounds.map((r) =>
    `<p>round ${r.round}: ${r.labels} labels, held-out PCK ${r.pck === null ? "?" : r.pck}</p>`
  ).join("");
}

function emptyPoints() {
  return state.info.skeleton.joints.map(() => null);
}

async function openFrame(i) {
  if (!state.info || i < 0 || i >= state.info.frames.length) return;
  const frame = state.info.frames[i];
  const data = await api("GET", `/api/labels/${frame.id}`);
  state.frame = i;
  state.image = null; // until this frame's image is loaded (the tests wait for it)
  state.labels = data.individuals.map((points) => points || emptyPoints());
  state.prediction = data.prediction;
  state.undo = [];
  state.individual = 0;
  state.joint = firstUnplaced();
  const image = new Image();
  image.onload = () => {
    state.image = image;
    fit();
    draw();
  };
  image.src = `/${frame.image}`;
  drawFrameList();
  drawJoints();
}

function fit() {
  const s = Math.min(canvas.width / state.image.width, canvas.height / state.image.height);
  state.scale = s;
  state.offset = [(canvas.width - s * state.image.width) / 2, (canvas.height - s * state.image.height) / 2];
}

function firstUnplaced() {
  const points = state.labels[state.individual];
  const j = points.findIndex((p) => p === null);
  return j < 0 ? 0 : j;
}

function toImage(event) {
  const box = canvas.getBoundingClientRect();
  const x = (event.clientX - box.left) * (canvas.width / box.width);
  const y = (event.clientY - box.top) * (canvas.height / box.height);
  return [(x - state.offset[0]) / state.scale, (y - state.offset[1]) / state.scale];
}

function toScreen(p) {
  return [state.offset[0] + state.scale * p[0], state.offset[1] + state.scale * p[1]];
}

function draw() {
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.image) return;
  context.drawImage(state.image, state.offset[0], state.offset[1],
    state.scale * state.image.width, state.scale * state.image.height);
  const skeleton = state.info.skeleton;
  const unlabelled = state.labels.every((points) => points.every((p) => p === null));
  if (state.prediction && unlabelled) {
    state.prediction.forEach((points) => points && drawPose(points, true));
  }
  state.labels.forEach((points, individual) => drawPose(points, false, individual));
  $("accept").hidden = !(state.prediction && unlabelled);
  const frame = state.info.frames[state.frame];
  $("where").textContent = `${frame.id}: ${skeleton.joints[state.joint]}` +
    (state.info.individuals > 1 ? `, individual ${state.individual + 1}` : "");
  $("saved").textContent = state.savedMs === null ? "" : `saved (${state.savedMs} ms)`;
}

function drawPose(points, predicted, individual) {
  const skeleton = state.info.skeleton;
  context.lineWidth = 2;
  context.setLineDash(predicted ? [4, 4] : []);
  skeleton.limbs.forEach(([a, b]) => {
    if (!Array.isArray(points[a]) || !Array.isArray(points[b])) return;
    const [x0, y0] = toScreen(points[a]);
    const [x1, y1] = toScreen(points[b]);
    context.strokeStyle = skeleton.colours[b];
    context.beginPath();
    context.moveTo(x0, y0);
    context.lineTo(x1, y1);
    context.stroke();
  });
  context.setLineDash([]);
  points.forEach((p, j) => {
    if (!Array.isArray(p)) return;
    const [x, y] = toScreen(p);
    const current = !predicted && individual === state.individual && j === state.joint;
    context.beginPath();
    context.arc(x, y, current ? 6 : 4, 0, 2 * Math.PI);
    if (predicted || p[2] === 1) {
      context.strokeStyle = skeleton.colours[j];
      context.stroke();
    } else {
      context.fillStyle = skeleton.colours[j];
      context.fill();
    }
  });
}

function drawJoints() {
  const skeleton = state.info.skeleton;
  const points = state.labels[state.individual];
  $("individual").textContent = state.info.individuals > 1
    ? `individual ${state.individual + 1} of ${state.info.individuals}` : "";
  const list = $("joints");
  list.innerHTML = "";
  skeleton.joints.forEach((name, j) => {
    const item = document.createElement("li");
    item.textContent = name;
    item.style.borderLeft = `4px solid ${skeleton.colours[j]}`;
    if (j === state.joint) item.classList.add("current");
    if (Array.isArray(points[j])) item.classList.add("placed");
    if (points[j] === "hidden") item.classList.add("hidden-joint");
    item.onclick = () => { state.joint = j; drawJoints(); draw(); };
    list.appendChild(item);
  });
}

// Saves go out in order, one after another; an edit never waits for the one before.
let saving = Promise.resolve();

function save() {
  const frame = state.info.frames[state.frame];
  const individuals = JSON.parse(JSON.stringify(state.labels));
  drawJoints();
  draw();
  state.pending += 1;
  saving = saving.then(() => send(frame, individuals)).finally(() => { state.pending -= 1; });
  return saving;
}

async function send(frame, individuals) {
  try {
    const answer = await api("PUT", `/api/labels/${frame.id}`, { individuals });
    state.savedMs = answer.saved_ms;
    frame.placed = answer.individuals.reduce((n, points) =>
      n + (points ? points.filter((p) => p !== null).length : 0), 0);
    showError(null);
  } catch (error) {
    showError(`not saved: ${error.message}`);
  }
  drawFrameList();
  draw();
}

function change(edit) {
  state.undo.push(JSON.stringify(state.labels));
  edit(state.labels[state.individual]);
  return save();
}

function advance() {
  const points = state.labels[state.individual];
  for (let step = 1; step <= points.length; step++) {
    const j = (state.joint + step) % points.length;
    if (points[j] === null) { state.joint = j; return; }
  }
}

function near(position) {
  const points = state.labels[state.individual];
  let best = -1, bestDistance = 6 / state.scale; // within 6 screen pixels: a drag
  points.forEach((p, j) => {
    if (!Array.isArray(p)) return;
    const d = Math.hypot(p[0] - position[0], p[1] - position[1]);
    if (d < bestDistance) { best = j; bestDistance = d; }
  });
  return best;
}

function accept() {
  if (!state.prediction) return Promise.resolve();
  state.undo.push(JSON.stringify(state.labels));
  state.labels = state.prediction.map((points) =>
    points ? points.map((p) => [p[0], p[1], 2]) : emptyPoints());
  return save();
}

canvas.addEventListener("mousedown", (event) => {
  if (!state.image) return;
  canvas.focus();
  const position = toImage(event);
  const unlabelled = state.labels.every((points) => points.every((p) => p === null));
  if (state.prediction && unlabelled) accept(); // correcting a pre-fill accepts it first
  const j = near(position);
  if (j >= 0) {
    state.drag = { joint: j, moved: false, before: JSON.stringify(state.labels) };
    state.joint = j;
    return;
  }
  const joint = state.joint;
  advance(); // before the save: the next click places the next joint
  change((points) => {
    const v = Array.isArray(points[joint]) ? points[joint][2] : 2;
    points[joint] = [round(position[0]), round(position[1]), v];
  });
});

canvas.addEventListener("mousemove", (event) => {
  if (!state.drag) return;
  const position = toImage(event);
  const p = state.labels[state.individual][state.drag.joint];
  p[0] = round(position[0]);
  p[1] = round(position[1]);
  state.drag.moved = true;
  draw();
});

window.addEventListener("mouseup", () => {
  if (!state.drag) return;
  const drag = state.drag;
  state.drag = null;
  if (drag.moved) {
    state.undo.push(drag.before);
    save();
  }
});

canvas.addEventListener("wheel", (event) => {
  event.preventDefault();
  zoom(event.deltaY < 0 ? 1.25 : 0.8, toImage(event));
});

function zoom(factor, around) {
  const centre = around || [(canvas.width / 2 - state.offset[0]) / state.scale,
    (canvas.height / 2 - state.offset[1]) / state.scale];
  const [sx, sy] = toScreen(centre);
  state.scale *= factor;
  state.offset = [sx - state.scale * centre[0], sy - state.scale * centre[1]];
  draw();
}

function round(v) {
  return Math.round(v * 100) / 100;
}

document.addEventListener("keydown", async (event) => {
  if (!state.info || event.target.tagName === "INPUT") return;
  const points = state.labels ? state.labels[state.individual] : null;
  const key = event.key;
  if (key === "ArrowRight" || key === "n") await openFrame(state.frame + 1);
  else if (key === "ArrowLeft" || key === "p") await openFrame(state.frame - 1);
  else if (key === "j" || key === "Tab") { event.preventDefault(); state.joint = (state.joint + 1) % points.length; }
  else if (key === "k") state.joint = (state.joint + points.length - 1) % points.length;
  else if (key === "h") { const j = state.joint; advance(); change((pts) => { pts[j] = "hidden"; }); }
  else if (key === "o" && Array.isArray(points[state.joint])) {
    await change((pts) => { pts[state.joint][2] = pts[state.joint][2] === 1 ? 2 : 1; });
  } else if (key === "u" || (key === "z" && (event.ctrlKey || event.metaKey))) {
    if (state.undo.length) { state.labels = JSON.parse(state.undo.pop()); await save(); }
  } else if (key === "a") await accept();
  else if (key === "i") { state.individual = (state.individual + 1) % state.info.individuals; state.joint = firstUnplaced(); }
  else if (key === "+" || key === "=") zoom(1.25);
  else if (key === "-") zoom(0.8);
  else if (key === "0") fit();
  else return;
  drawJoints();
  draw();
});

$("next").onclick = () => openFrame(state.frame + 1);
$("prev").onclick = () => openFrame(state.frame - 1);
$("accept").onclick = () => accept();

$("add-video").onclick = async () => {
  try {
    const answer = await api("POST", "/api/videos", { path: $("video-path").value });
    $("job-text").textContent = `videos: ${answer.videos.length}`;
    showError(null);
  } catch (error) { showError(error.message); }
};

$("pick").onclick = async () => {
  try {
    await api("POST", "/api/pick", { count: Number($("pick-count").value), method: $("pick-method").value });
    await loadProject();
  } catch (error) { showError(error.message); }
};

async function startJob(kind, body) {
  try {
    await api("POST", `/api/${kind}`, body);
    watchJob(true);
  } catch (error) { showError(error.message); }
}

$("train").onclick = () => startJob("train", $("epochs").value ? { epochs: Number($("epochs").value) } : {});
$("suggest").onclick = () => startJob("suggest", { count: 10 });

// Polls the job while it runs; when one the page watched ends, the project and the frame are
// read again (new rounds, pre-filled joints, suggested frames).
async function watchJob(watching = false) {
  const job = await api("GET", "/api/job");
  $("job-text").textContent = job.kind ? `${job.kind}: ${job.state}` + (job.error ? ` (${job.error})` : "") : "no job";
  $("job-progress").value = job.progress;
  $("job-command").textContent = job.command || "";
  if (job.state === "running") { setTimeout(() => watchJob(true), 1000); return; }
  if (!watching) return;
  if (job.state === "failed") showError(`${job.kind} failed: ${job.error}`);
  await loadProject();
  if (state.frame >= 0) await openFrame(state.frame);
}

$("export").onclick = async () => {
  const models = Array.from($("export-models").selectedOptions).map((o) => o.value);
  try {
    const answer = await api("POST", "/api/export", { models });
    $("job-text").textContent = `exported: ${answer.written.join(", ")}`;
  } catch (error) { showError(error.message); }
};

loadProject().then(() => watchJob());
