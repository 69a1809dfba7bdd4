// keras-hourglass demo page: photos (chosen, dropped or taken with the camera) go to the local
// API (POST /api/poses); each photo's people are drawn on a canvas with their boxes, listed in
// joint tables and downloadable. Boxes can be added (drag on an empty place), moved (drag a
// box) and deleted (its x); the poses are asked for again with the edited boxes.
"use strict";

const state = { info: null, queue: Promise.resolve(), count: 0, photos: [] };
window.hourglassDemo = state; // for automation (tests, benchmarks): state.photos[i].boxes, .predict()
const HANDLE = 0.035; // the delete handle's size, as a fraction of the image's longer side

async function loadInfo() {
  const response = await fetch("/api/info");
  state.info = await response.json();
  const info = state.info;
  document.getElementById("model").textContent =
    `Model ${info.model} (${info.skeleton.name}, ${info.skeleton.joints.length} joints) on ` +
    `${info.runtime}; person detector ${info.detector ? "on" : "off"}.`;
}

// --- one photo: its card, its boxes, its poses ----------------------------------------------

class Photo {
  constructor(blob, name) {
    this.blob = blob;
    this.name = name;
    this.boxes = null; // null: let the server choose (the detector's, or the whole photo)
    this.result = null;
    this.image = null;
    this.drag = null;
    const card = document.getElementById("photo-template").content.firstElementChild.cloneNode(true);
    card.dataset.index = String(state.count++);
    card.querySelector(".name").textContent = name;
    this.card = card;
    state.photos.push(this);
    this.canvas = card.querySelector("canvas");
    this.status = card.querySelector(".status");
    document.getElementById("photos").prepend(card);
    card.querySelector(".download-json").addEventListener("click", () => this.downloadJson());
    card.querySelector(".download-image").addEventListener("click", () => this.downloadImage());
    card.querySelector(".detect-again").addEventListener("click", () => {
      this.boxes = null;
      this.predict();
    });
    this.canvas.addEventListener("pointerdown", (e) => this.pointerDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.pointerMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.pointerUp(e));
  }

  setState(name, message) {
    this.card.dataset.state = name;
    this.status.textContent = message;
  }

  async start() {
    try {
      this.image = await createImageBitmap(this.blob);
    } catch (error) {
      this.image = null; // not an image the browser decodes: the server says what it is
    }
    await this.predict();
  }

  async predict() {
    this.setState("waiting", "Predicting...");
    const query = new URLSearchParams({ threshold: "0.2" });
    if (this.boxes !== null) {
      query.set("boxes", JSON.stringify(this.boxes.map((b) => b.map((v) => Math.round(v * 100) / 100))));
    }
    const started = performance.now();
    let response, body;
    try {
      response = await fetch(`/api/poses?${query}`, {
        method: "POST",
        headers: { "Content-Type": this.blob.type || "application/octet-stream" },
        body: this.blob,
      });
      body = await response.json();
    } catch (error) {
      this.setState("error", `The server did not answer (${error.message}); is hourglass-demo running?`);
      return;
    }
    if (!response.ok) {
      this.setState("error", `${body.error || response.statusText} (HTTP ${response.status})`);
      return;
    }
    if (this.image === null) {
      this.setState("error", "The server read this photo but the browser cannot show it.");
      return;
    }
    this.result = body;
    this.boxes = body.people.filter((p) => p.bbox).map((p) => p.bbox.slice());
    this.draw();
    this.tables();
    const people = body.people.length;
    const from = { given: "your boxes", detector: "the person detector's boxes", turned: "the person detector on the turned photo", whole: "the whole photo, re-framed", "whole image": "the whole photo" }[body.boxes_from];
    const total = Math.round(performance.now() - started);
    this.setState(
      "done",
      (people ? `${people} ${people === 1 ? "person" : "people"} from ${from}; ` : "no person found; ") +
        `${body.time_ms} ms on the server, ${total} ms in all.`
    );
    this.card.dataset.elapsedMs = String(total);
    for (const button of this.card.querySelectorAll("button")) button.disabled = false;
  }

  // --- drawing, as hourglass-predict draws (drawing.draw_pose / draw_box) ---

  draw() {
    const { canvas, image, result } = this;
    const skeleton = state.info.skeleton;
    canvas.width = image.width;
    canvas.height = image.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0);
    const size = Math.max(image.width, image.height);
    const radius = Math.max(3, Math.round(size / 150));
    const width = Math.max(2, Math.round(size / 250));
    const threshold = result.threshold;
    for (const person of result.people) {
      const points = skeleton.joints.map((name) => person.joints[name]);
      skeleton.limbs.forEach(([a, b], i) => {
        ctx.globalAlpha = Math.min(points[a].confidence, points[b].confidence) >= threshold ? 1 : 0.35;
        ctx.strokeStyle = skeleton.limb_colours[i];
        ctx.lineWidth = width;
        ctx.beginPath();
        ctx.moveTo(points[a].x + 0.5, points[a].y + 0.5);
        ctx.lineTo(points[b].x + 0.5, points[b].y + 0.5);
        ctx.stroke();
      });
      points.forEach((p, j) => {
        ctx.globalAlpha = p.confidence >= threshold ? 1 : 0.35;
        ctx.fillStyle = skeleton.joint_colours[j];
        ctx.strokeStyle = "#000";
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.arc(p.x + 0.5, p.y + 0.5, radius, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      });
      ctx.globalAlpha = 1;
    }
    const line = Math.max(1, Math.round(size / 400));
    this.boxes.forEach((box, i) => {
      const [x, y, w, h] = box;
      ctx.strokeStyle = "#50a0ff";
      ctx.lineWidth = line;
      ctx.strokeRect(x, y, w, h);
      const person = result.people.find((p) => p.bbox && p.bbox.every((v, k) => Math.abs(v - box[k]) < 0.01));
      const label = person ? person.score.toFixed(2) : "";
      const font = Math.max(12, Math.round(size / 40));
      ctx.font = `${font}px sans-serif`;
      if (label) {
        ctx.fillStyle = "#50a0ff";
        ctx.fillRect(x, y - font - 4, ctx.measureText(label).width + 8, font + 4);
        ctx.fillStyle = "#fff";
        ctx.fillText(label, x + 4, y - 4);
      }
      const [hx, hy, hs] = this.handle(box);
      ctx.fillStyle = "#c62828";
      ctx.fillRect(hx, hy, hs, hs);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = Math.max(1, hs / 8);
      ctx.beginPath();
      ctx.moveTo(hx + hs * 0.25, hy + hs * 0.25);
      ctx.lineTo(hx + hs * 0.75, hy + hs * 0.75);
      ctx.moveTo(hx + hs * 0.75, hy + hs * 0.25);
      ctx.lineTo(hx + hs * 0.25, hy + hs * 0.75);
      ctx.stroke();
    });
    if (this.drag && this.drag.kind === "new") {
      const [x, y, w, h] = this.dragBox();
      ctx.setLineDash([8, 6]);
      ctx.strokeStyle = "#50a0ff";
      ctx.strokeRect(x, y, w, h);
      ctx.setLineDash([]);
    }
  }

  handle(box) {
    const size = HANDLE * Math.max(this.canvas.width, this.canvas.height);
    return [box[0] + box[2] - size, box[1], size];
  }

  tables() {
    const holder = this.card.querySelector(".people");
    holder.replaceChildren();
    const threshold = this.result.threshold;
    this.result.people.forEach((person, i) => {
      const table = document.createElement("table");
      table.className = "joints";
      table.dataset.person = String(i);
      const caption = table.createCaption();
      caption.textContent = `Person ${i + 1}: score ${person.score.toFixed(2)}` +
        (person.bbox ? `, box ${person.bbox.map((v) => Math.round(v)).join(", ")}` : ", the whole photo");
      const head = table.createTHead().insertRow();
      for (const name of ["joint", "x", "y", "confidence"]) {
        const th = document.createElement("th");
        th.textContent = name;
        head.appendChild(th);
      }
      const body = table.createTBody();
      for (const [name, joint] of Object.entries(person.joints)) {
        const row = body.insertRow();
        row.dataset.joint = name;
        if (joint.confidence < threshold) row.className = "faint";
        for (const value of [name, joint.x.toFixed(1), joint.y.toFixed(1), joint.confidence.toFixed(3)]) {
          row.insertCell().textContent = value;
        }
      }
      holder.appendChild(table);
    });
  }

  // --- editing boxes ---

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) * this.canvas.width) / rect.width,
      ((event.clientY - rect.top) * this.canvas.height) / rect.height,
    ];
  }

  pointerDown(event) {
    if (!this.result || this.card.dataset.state === "waiting") return;
    const [x, y] = this.point(event);
    this.canvas.setPointerCapture(event.pointerId);
    for (let i = this.boxes.length - 1; i >= 0; i--) {
      const box = this.boxes[i];
      const [hx, hy, hs] = this.handle(box);
      if (x >= hx && x <= hx + hs && y >= hy && y <= hy + hs) {
        this.drag = { kind: "delete", index: i };
        return;
      }
      if (x >= box[0] && x <= box[0] + box[2] && y >= box[1] && y <= box[1] + box[3]) {
        this.drag = { kind: "move", index: i, start: [x, y], original: box.slice(), moved: false };
        return;
      }
    }
    this.drag = { kind: "new", start: [x, y], end: [x, y] };
  }

  pointerMove(event) {
    if (!this.drag) return;
    const [x, y] = this.point(event);
    if (this.drag.kind === "new") {
      this.drag.end = [x, y];
    } else if (this.drag.kind === "move") {
      const { original, start, index } = this.drag;
      this.boxes[index] = [original[0] + x - start[0], original[1] + y - start[1], original[2], original[3]];
      this.drag.moved = true;
    } else {
      return;
    }
    this.draw();
  }

  dragBox() {
    const [x0, y0] = this.drag.start;
    const [x1, y1] = this.drag.end;
    return [Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0)];
  }

  pointerUp(event) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    const min = 0.02 * Math.max(this.canvas.width, this.canvas.height);
    if (drag.kind === "delete") {
      this.boxes.splice(drag.index, 1);
    } else if (drag.kind === "new") {
      const box = this.dragBox.call({ drag });
      if (box[2] < min || box[3] < min) {
        this.draw();
        return; // a click, not a box
      }
      this.boxes.push(box);
    } else if (!drag.moved) {
      return;
    }
    this.predict();
  }

  // --- downloads ---

  stem() {
    return this.name.replace(/\.[^.]*$/, "") || "photo";
  }

  downloadJson() {
    const info = state.info;
    const record = {
      image: this.name,
      width: this.result.width,
      height: this.result.height,
      model: info.model,
      skeleton: info.skeleton.name,
      flip_test: info.flip_test,
      runtime: info.runtime,
      threshold: this.result.threshold,
      people: this.result.people,
    };
    save(new Blob([JSON.stringify(record, null, 2)], { type: "application/json" }), `${this.stem()}_pose.json`);
  }

  downloadImage() {
    this.canvas.toBlob((blob) => save(blob, `${this.stem()}_pose.png`), "image/png");
  }
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function addPhotos(files) {
  for (const file of files) {
    const photo = new Photo(file, file.name);
    state.queue = state.queue.then(() => photo.start()); // one at a time, in order
  }
}

// --- inputs: the file chooser, drag and drop, the camera -------------------------------------

function setUpInputs() {
  const input = document.getElementById("files");
  input.addEventListener("change", () => {
    addPhotos(Array.from(input.files));
    input.value = "";
  });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    addPhotos(Array.from(e.dataTransfer.files));
  });
  const video = document.getElementById("camera");
  const start = document.getElementById("camera-start");
  const shot = document.getElementById("camera-shot");
  const stop = document.getElementById("camera-stop");
  const status = document.getElementById("camera-status");
  let stream = null;
  start.addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (error) {
      status.textContent = `No camera (${error.message}).`;
      return;
    }
    video.srcObject = stream;
    video.hidden = shot.hidden = stop.hidden = false;
    start.hidden = true;
    status.textContent = "";
    await video.play();
  });
  shot.addEventListener("click", () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const name = `camera-${new Date().toISOString().replace(/[:.]/g, "-")}.jpg`;
    canvas.toBlob((blob) => addPhotos([new File([blob], name, { type: "image/jpeg" })]), "image/jpeg", 0.92);
  });
  stop.addEventListener("click", () => {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    video.hidden = shot.hidden = stop.hidden = true;
    start.hidden = false;
  });
}

setUpInputs();
loadInfo().catch((error) => {
  document.getElementById("model").textContent = `The server did not answer (${error.message}).`;
});
