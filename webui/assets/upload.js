// Uploading an archive (zip, tar, tar.gz) as a new dataset version from the page: the create call, then
// 1 MiB chunks with Content-Range and a progress bar, then the finish call. A chunk that fails is
// retried from the offset the service reports, and an upload the page left unfinished (a closed tab,
// a dropped connection) resumes where it stopped when the same file is picked again for the same name.
import {get, post, putChunk} from "./api.js";
import {h, notice, replace} from "./ui.js";
import {visibilitySelect} from "./visibility.js";

const CHUNK = 1024 * 1024;
const RETRIES = 5;
const TASKS = ["", "cls", "det", "seg", "pose"];

function key(name, file) {
  return `cauchy.upload|${name}|${file.name}|${file.size}|${file.lastModified}`;
}

async function resumeOrCreate(name, file, fields) {
  const remembered = localStorage.getItem(key(name, file));
  if (remembered) {
    const state = await get(`/datasets/uploads/${remembered}`).catch(() => null);
    if (state) return state;
  }
  const state = await post("/datasets/uploads", {name, size: file.size, ...fields});
  localStorage.setItem(key(name, file), state.id);
  return state;
}

// Answers after which the upload goes on from the offset the service reports: a chunk that arrived
// although its answer was lost (wrong_offset), another request still writing (busy), a range refused.
const RESUMABLE = new Set(["invalid_range", "wrong_offset", "busy"]);

async function send(state, file, onProgress) {
  let offset = state.offset, failures = 0;
  while (offset < file.size) {
    try {
      offset = (await putChunk(`/datasets/uploads/${state.id}`, file.slice(offset, offset + CHUNK), offset, file.size)).offset;
      failures = 0;
    } catch (exc) {
      if (++failures > RETRIES || (exc.status >= 400 && exc.status < 500 && !RESUMABLE.has(exc.code))) throw exc;
      await new Promise((done) => setTimeout(done, 500 * failures));
      offset = (await get(`/datasets/uploads/${state.id}`)).offset;
    }
    onProgress(offset);
  }
}

// The form; `done(version)` is called with the new version once the archive is all there.
export function uploadForm(done) {
  const el = {
    file: h("input", {type: "file", id: "u-file", accept: ".zip,.tar,.tgz,.tar.gz,.gz,application/zip,application/x-tar"}),
    name: h("input", {id: "u-name", placeholder: "e.g. pets", maxlength: 100, autocomplete: "off"}),
    task: h("select", {id: "u-task"}, TASKS.map((t) => h("option", {value: t}, t || "recognise it"))),
    format: h("input", {id: "u-format", placeholder: "recognise it (e.g. coco, yolo)", autocomplete: "off"}),
    visibility: visibilitySelect({id: "u-visibility"}, "private"),
    bar: h("progress", {max: 1, value: 0, hidden: true, "data-role": "upload-progress"}),
    status: h("span", {class: "muted", "data-role": "upload-status"}),
    submit: h("button", {class: "btn primary", type: "submit"}, "Upload"),
  };
  const drop = h("label", {class: "dropzone", for: "u-file"}, "Drop an archive here or pick one: ", el.file);
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer.files.length) el.file.files = ev.dataTransfer.files;
    pickedName();
  });
  el.file.addEventListener("change", pickedName);
  function pickedName() {
    const file = el.file.files[0];
    if (file && !el.name.value) el.name.value = file.name.replace(/\.(zip|tar|tgz|tar\.gz)$/i, "").replace(/[^A-Za-z0-9_.-]/g, "_");
  }
  const form = h("form", {class: "panel upload", onsubmit: (ev) => { ev.preventDefault(); start(); }},
    h("h2", {}, "Upload a dataset"), drop,
    h("div", {class: "grid"},
      h("div", {class: "field"}, h("label", {for: "u-name"}, "Name"), el.name),
      h("div", {class: "field"}, h("label", {for: "u-task"}, "Task"), el.task),
      h("div", {class: "field"}, h("label", {for: "u-format"}, "Format"), el.format),
      h("div", {class: "field"}, h("label", {for: "u-visibility"}, "Visible to"), el.visibility)),
    h("div", {class: "form-actions"}, el.submit, el.bar, el.status));

  async function start() {
    const file = el.file.files[0];
    const name = el.name.value.trim();
    if (!file || !name) {
      replace(el.status, "Pick an archive and give the dataset a name.");
      return;
    }
    const fields = {visibility: el.visibility.value};
    if (el.task.value) fields.task = el.task.value;
    if (el.format.value.trim()) fields.format = el.format.value.trim();
    el.submit.disabled = true;
    el.bar.hidden = false;
    el.bar.max = file.size;
    try {
      const state = await resumeOrCreate(name, file, fields);
      const shown = (offset) => {
        el.bar.value = offset;
        replace(el.status, `${Math.floor((100 * offset) / file.size)}% of ${file.name}`);
      };
      shown(state.offset);
      await send(state, file, shown);
      const version = await post(`/datasets/uploads/${state.id}/finish`);
      localStorage.removeItem(key(name, file));
      replace(el.status, "Uploaded: unpacking and validating…");
      done(version);
    } catch (exc) {
      replace(el.status, notice(`Upload stopped: ${exc.message} (pick the same file again to resume)`, "error"));
    } finally {
      el.submit.disabled = false;
    }
  }
  return form;
}
