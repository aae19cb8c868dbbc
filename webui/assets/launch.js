// Launch: a template from hypes/ (or a job to clone), the usual fields in a form or the whole hypes as
// JSON; the dataset is one of the stored datasets of the task that are ready (data.dataset: the service
// gives the job its format, split names and layout, services/datasets/job_data.py), or a folder on the
// server (data.data_dir). The API's validation errors appear next to the field they
// name. The job belongs to the signed-in user, who picks who else may see it and a priority up to
// what an admin allows them.
import {get, maxPriority, post, PRIORITY_RANGE} from "./api.js";
import {errorNotice, formatValue, h, notice, replace} from "./ui.js";
import {visibilityChoices, visibilitySelect} from "./visibility.js";

// Form fields that live in the hypes: [field name the API reports, label, path in the hypes, hint].
const HYPES_FIELDS = [
  ["hypes.network.model_name", "Model", ["network", "model_name"], "A registered model, e.g. small_cnn, resnet18"],
  ["hypes.solver.max_epoch", "Epochs", ["solver", "max_epoch"], ""],
  ["hypes.train.batch_size", "Batch size", ["train", "batch_size"], ""],
  ["hypes.solver.lr.base_lr", "Learning rate", ["solver", "lr", "base_lr"], ""],
];
const OTHER = "__other__";
// What data.* says about the files a template or a cloned job read: left out when another dataset is
// chosen, so that the service fills them from that dataset (what the hypes give wins there).
const DATA_FACTS = ["data_dir", "format", "train_split", "val_split", "test_split", "num_classes", "class_names"];

function dig(doc, path) {
  return path.reduce((node, key) => (node && typeof node === "object" ? node[key] : undefined), doc);
}

function put(doc, path, value) {
  let node = doc;
  for (const key of path.slice(0, -1)) {
    if (!node[key] || typeof node[key] !== "object") node[key] = {};
    node = node[key];
  }
  node[path[path.length - 1]] = value;
}

// "0.01" -> 0.01, "" -> null, anything else stays text so the API can say what is wrong with it.
function parseValue(text) {
  const t = text.trim();
  if (t === "") return null;
  return /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t) ? Number(t) : t;
}

function showValue(value) {
  return value === null || value === undefined ? "" : String(value);
}

export function renderLaunch(view, params) {
  replace(view, h("div", {class: "page-head"}, h("h1", {}, "Launch a job")), notice("Loading templates…"));
  load(view, params.get("clone")).catch((exc) => replace(view, errorNotice(exc, "Could not prepare the form")));
}

async function load(view, cloneId) {
  const [templates, weights, health, source, stored] = await Promise.all([
    get("/templates"), get("/weights").catch(() => ({weights: []})), get("/health"),
    cloneId ? get(`/jobs/${cloneId}`) : null, get("/datasets").catch(() => ({datasets: []}))]);
  const ready = readyDatasets(stored.datasets);
  const usable = templates.templates.filter((t) => t.hypes);
  if (!usable.length && !source) {
    replace(view, h("div", {class: "page-head"}, h("h1", {}, "Launch a job")),
      notice("No hypes templates under hypes/: add one to launch from the page.", "error"));
    return;
  }
  const state = {doc: null, mode: "form"};
  const tasks = [...new Set(usable.map((t) => t.task))];
  const el = {};
  const field = (name, label, input, hint) => h("div", {class: "field", "data-field": name},
    h("label", {for: input.id}, label), input, hint ? h("small", {class: "hint"}, hint) : null,
    h("div", {class: "field-error", role: "alert"}));
  const input = (id, attrs = {}) => h("input", {id, autocomplete: "off", ...attrs});

  el.task = h("select", {id: "f-task", onchange: () => { fillTemplates(); pickTemplate(); }},
    tasks.map((t) => h("option", {value: t}, t)));
  el.template = h("select", {id: "f-template", onchange: () => pickTemplate()});
  el.name = input("f-name", {placeholder: "defaults to the template's name", maxlength: 200});
  el.visibility = visibilitySelect({id: "f-visibility"}, "private");
  el.phase = h("select", {id: "f-phase"}, ["train", "finetune", "test"].map((p) => h("option", {value: p}, p)));
  el.gpus = input("f-gpus", {inputmode: "numeric", value: "0"});
  const [lowest, highest] = [PRIORITY_RANGE[0], maxPriority()];
  el.priority = input("f-priority", {type: "number", min: lowest, max: highest, step: 1, value: "0"});
  el.pretrained = h("select", {id: "f-pretrained", onchange: () => syncPretrained()},
    h("option", {value: ""}, "None (random initialisation)"),
    weights.weights.map((w) => h("option", {value: w.name},
      `${w.name} — ${w.architecture}, ${w.num_classes} classes${headline(w.metrics)}`)),
    h("option", {value: OTHER}, "Other: a name, path or URL…"));
  el.dataset = h("select", {id: "f-dataset", onchange: () => syncDataset()});
  el.dataDir = input("f-data-data_dir", {placeholder: "a folder on the server, e.g. data/digits", hidden: true});
  el.pretrainedOther = input("f-pretrained-other", {placeholder: "http://host:8080/weights/file.pth", hidden: true});
  el.hypesInputs = HYPES_FIELDS.map(([name, , path]) => input(`f-${path.join("-")}`, {"data-path": path.join(".")}));
  el.json = h("textarea", {id: "f-json", spellcheck: "false", rows: 24, "aria-label": "Hypes as JSON"});
  el.general = h("div", {class: "form-error", role: "alert", hidden: true});
  el.submit = h("button", {class: "btn primary", type: "submit"}, "Launch");

  const tabs = h("div", {class: "segmented tabs", role: "tablist"},
    h("button", {type: "button", class: "on", "data-mode": "form", onclick: () => setMode("form")}, "Form"),
    h("button", {type: "button", "data-mode": "json", onclick: () => setMode("json")}, "Hypes JSON"));
  const formPane = h("div", {class: "pane", "data-pane": "form"},
    h("fieldset", {}, h("legend", {}, "Training"),
      h("div", {class: "grid"},
        h("div", {class: "field wide", "data-field": "hypes.data"},
          h("label", {for: "f-dataset"}, "Dataset"), el.dataset, el.dataDir,
          h("small", {class: "hint"}, "A ready dataset of this task, or a folder on the server"),
          h("div", {class: "field-error", role: "alert"})),
        HYPES_FIELDS.map(([name, label, , hint], i) => field(name, label, el.hypesInputs[i], hint)),
        h("div", {class: "field wide", "data-field": "hypes.network.pretrained"},
          h("label", {for: "f-pretrained"}, "Pretrained weights"), el.pretrained, el.pretrainedOther,
          h("small", {class: "hint"}, "From the weights host, or any name, path or URL"),
          h("div", {class: "field-error", role: "alert"})))));
  const jsonPane = h("div", {class: "pane", "data-pane": "json", hidden: true},
    h("div", {class: "field", "data-field": "hypes"}, el.json,
      h("small", {class: "hint"}, "The whole hypes document; the form fields are applied to it when you switch back."),
      h("div", {class: "field-error", role: "alert"})));

  const form = h("form", {class: "launch", novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); }},
    el.general,
    h("fieldset", {}, h("legend", {}, "Template"),
      h("div", {class: "grid"},
        source ? h("div", {class: "field wide"}, h("label", {}, "Cloned from"),
          h("p", {}, h("a", {href: `#/jobs/${source.id}`}, `#${source.id} ${source.name}`), " (its resolved hypes)"))
          : [field("task", "Task", el.task), field("template", "Template", el.template)])),
    h("fieldset", {}, h("legend", {}, "Job"),
      h("div", {class: "grid"},
        field("name", "Name", el.name), field("visibility", "Visible to", el.visibility),
        field("phase", "Phase", el.phase),
        field("resources.gpus", "GPUs", el.gpus, `This host has ${health.gpus.length} GPU${health.gpus.length === 1 ? "" : "s"}; 0 runs on the CPU`),
        field("priority", "Priority", el.priority, highest > 0 ? `${lowest} to ${highest}; higher starts first`
          : `${lowest} to 0; higher starts first (an admin can allow you more)`))),
    tabs, formPane, jsonPane,
    h("div", {class: "form-actions"}, el.submit, h("a", {class: "btn ghost", href: "#/jobs"}, "Cancel")));
  replace(view, h("div", {class: "page-head"}, h("h1", {}, source ? `Clone job #${source.id}` : "Launch a job")), form);

  function fillTemplates() {
    replace(el.template, usable.filter((t) => t.task === el.task.value)
      .map((t) => h("option", {value: t.name}, t.name.split("/").slice(1).join("/").replace(/\.json$/, ""))));
  }

  function pickTemplate() {
    const template = usable.find((t) => t.name === el.template.value);
    state.doc = structuredClone(template.hypes);
    docToForm();
  }

  function taskOf() {
    return source ? dig(state.doc, ["task"]) : el.task.value;
  }

  function docToForm() {
    HYPES_FIELDS.forEach(([, , path], i) => { el.hypesInputs[i].value = showValue(dig(state.doc, path)); });
    const choices = ready.filter((d) => d.task === taskOf());
    replace(el.dataset, choices.map((d) => h("option", {value: d.name}, `${d.name} — ${d.format}, v${d.version}`)),
      h("option", {value: OTHER}, "A folder on the server…"));
    const named = String(dig(state.doc, ["data", "dataset"]) || "").split("@")[0];
    el.dataset.value = choices.some((d) => d.name === named) ? named : OTHER;
    el.dataDir.value = showValue(dig(state.doc, ["data", "data_dir"]));
    syncDataset();
    const pretrained = dig(state.doc, ["network", "pretrained"]) || "";
    const known = !pretrained || weights.weights.some((w) => w.name === pretrained);
    el.pretrained.value = known ? pretrained : OTHER;
    el.pretrainedOther.value = known ? "" : pretrained;
    syncPretrained();
  }

  function formToDoc() {
    HYPES_FIELDS.forEach(([, , path], i) => put(state.doc, path, parseValue(el.hypesInputs[i].value)));
    const data = state.doc.data && typeof state.doc.data === "object" ? state.doc.data : (state.doc.data = {});
    const chosen = chosenDataset();
    if (chosen) {
      if (String(data.dataset || "").split("@")[0] !== chosen.name) DATA_FACTS.forEach((key) => delete data[key]);
      data.dataset = chosen.name;
      delete data.data_dir;
    } else {
      delete data.dataset;
      data.data_dir = el.dataDir.value.trim();
    }
    const choice = el.pretrained.value === OTHER ? el.pretrainedOther.value.trim() : el.pretrained.value;
    put(state.doc, ["network", "pretrained"], choice || null);
  }

  function chosenDataset() {
    return ready.find((d) => d.name === el.dataset.value);
  }

  function syncDataset() {
    el.dataDir.hidden = el.dataset.value !== OTHER;
  }

  function syncPretrained() {
    el.pretrainedOther.hidden = el.pretrained.value !== OTHER;
  }

  function setMode(mode) {
    if (mode === state.mode) return;
    if (mode === "json") {
      formToDoc();
      el.json.value = JSON.stringify(state.doc, null, 2);
    } else if (!readJson()) {
      return;
    } else {
      docToForm();
    }
    state.mode = mode;
    tabs.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.mode === mode));
    formPane.hidden = mode !== "form";
    jsonPane.hidden = mode !== "json";
  }

  function readJson() {
    clearErrors();
    try {
      const doc = JSON.parse(el.json.value);
      if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error("expected a JSON object");
      state.doc = doc;
      return true;
    } catch (exc) {
      showError("hypes", `Not valid JSON: ${exc.message}`);
      return false;
    }
  }

  function clearErrors() {
    el.general.hidden = true;
    form.querySelectorAll(".field.invalid").forEach((f) => f.classList.remove("invalid"));
    form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
  }

  // The error goes to the field it names, else to the closest enclosing one (hypes.solver.lr.x -> hypes).
  function showError(name, message) {
    let key = name || "";
    let target = null;
    while (key && !(target = form.querySelector(`.field[data-field="${CSS.escape(key)}"]:not([hidden])`))) {
      key = key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "";
    }
    if (target && target.closest("[hidden]") && state.mode === "form" && key === "hypes") target = null;
    if (target) {
      target.classList.add("invalid");
      target.querySelector(".field-error").textContent = message;
      target.querySelector("input, select, textarea")?.focus();
    }
    el.general.hidden = false;
    replace(el.general, target ? "The job was not queued: fix the field marked below." : `The job was not queued: ${message}`);
  }

  async function submit() {
    clearErrors();
    if (state.mode === "json" && !readJson()) return;
    if (state.mode === "form") formToDoc();
    const priority = parseValue(el.priority.value) ?? 0;
    if (typeof priority === "number" && priority > highest) {
      showError("priority", `at most ${highest} for you${highest ? "" : ": a higher priority needs an admin"}`);
      return;
    }
    const body = {hypes: state.doc, phase: el.phase.value, resources: {gpus: parseValue(el.gpus.value) ?? 0},
      priority, visibility: el.visibility.value};
    if (el.name.value.trim()) body.name = el.name.value.trim();
    else if (!source) body.name = el.template.value.split("/").pop().replace(/\.json$/, "");
    el.submit.disabled = true;
    el.submit.textContent = "Launching…";
    try {
      const job = await post("/jobs", body);
      location.hash = `#/jobs/${job.id}`;
    } catch (exc) {
      showError(exc.field, exc.message);
    } finally {
      el.submit.disabled = false;
      el.submit.textContent = "Launch";
    }
  }

  if (source) {
    state.doc = structuredClone(source.hypes);
    el.name.value = `${source.name} (copy)`.slice(0, 200);
    el.phase.value = source.phase;
    el.gpus.value = String(source.resources.gpus);
    el.priority.value = String(Math.min(source.priority, highest));
    el.visibility.value = visibilityChoices().includes(source.visibility) ? source.visibility : "private";
    docToForm();
  } else {
    fillTemplates();
    pickTemplate();
  }
}

// {id, name, version, task, format} of each dataset's latest ready version.
function readyDatasets(datasets) {
  return datasets.filter((d) => d.latest_ready).map((d) => {
    const version = d.versions.find((v) => v.version === d.latest_ready);
    return {id: d.id, name: d.name, version: version.version, task: version.task, format: version.format};
  });
}

function headline(metrics) {
  const name = ["top1", "map", "miou"].find((k) => metrics && k in metrics);
  return name ? `, ${name} ${formatValue(metrics[name])}` : "";
}
