// Datasets: the list (#/datasets) and one dataset's page (#/datasets/<id>[?version=N]): its versions,
// the validation's progress while it runs, then the report, the statistics as plots and the previews.
import {get} from "./api.js";
import {bars, histogram, scatter} from "./plots.js";
import {errorNotice, formatBytes, formatTime, h, notice, poll, replace, stateBadge} from "./ui.js";
import {uploadForm} from "./upload.js";
import {visibilityLabel} from "./visibility.js";

const BUSY = ["uploading", "unpacking", "validating"];
const INSTANCES = {cls: "images", det: "boxes", seg: "images with the class", pose: "people"};

export function renderDatasets(view) {
  const body = h("div", {}, notice("Loading the datasets…"));
  const upload = uploadForm((version) => { location.hash = `#/datasets/${version.dataset_id}?version=${version.version}`; });
  replace(view, h("div", {class: "page-head"}, h("h1", {}, "Datasets"),
    h("span", {class: "muted"}, "Name one in a job's hypes as data.dataset, or pick it in the launch form")), upload, body);
  get("/datasets").then(({datasets}) => {
    if (!datasets.length) {
      replace(body, h("div", {class: "empty"}, h("p", {}, "No datasets yet."),
        h("p", {class: "muted"}, "Upload an archive above, or use `cauchy dataset upload PATH`.")));
      return;
    }
    replace(body, h("table", {class: "datasets"},
      h("thead", {}, h("tr", {}, ["Name", "Latest version", "Task", "Format", "Size", "Owner", "Visibility", "Created"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, datasets.map((d) => {
        const latest = d.versions[d.versions.length - 1];
        return h("tr", {"data-dataset": d.name},
          h("td", {"data-label": "Name", class: "name"}, h("a", {href: `#/datasets/${d.id}`}, d.name)),
          h("td", {"data-label": "Latest version"}, latest ? [`v${latest.version} `, stateBadge(latest.state)] : "—"),
          h("td", {"data-label": "Task"}, (latest && latest.task) || "—"),
          h("td", {"data-label": "Format"}, (latest && latest.format) || "—"),
          h("td", {"data-label": "Size"}, latest ? formatBytes(latest.size) : "—"),
          h("td", {"data-label": "Owner"}, d.owner),
          h("td", {"data-label": "Visibility"}, visibilityLabel(d.visibility)),
          h("td", {"data-label": "Created"}, formatTime(d.created_at)));
      }))));
  }).catch((exc) => replace(body, errorNotice(exc, "Could not load the datasets")));
  return () => {};
}

export function renderDataset(view, id, params) {
  let stop = () => {};
  replace(view, notice("Loading the dataset…"));
  get(`/datasets/${id}`).then((dataset) => {
    const wanted = Number(params.get("version")) || (dataset.versions[dataset.versions.length - 1] || {}).version;
    const version = dataset.versions.find((v) => v.version === wanted);
    const picker = h("select", {id: "version", "aria-label": "Version",
      onchange: () => { location.hash = `#/datasets/${id}?version=${picker.value}`; }},
    dataset.versions.map((v) => h("option", {value: v.version, selected: v.version === wanted},
      `v${v.version} · ${v.state}`)));
    const body = h("div", {class: "dataset-body"});
    replace(view, h("div", {class: "page-head"}, h("a", {class: "back", href: "#/datasets"}, "← Datasets"),
      h("h1", {}, dataset.name), h("span", {class: "muted"}, `${dataset.owner} · `, visibilityLabel(dataset.visibility)),
      h("div", {}, picker)), body);
    if (!version) {
      replace(body, notice("This dataset has no versions yet.", "muted"));
      return;
    }
    stop = follow(body, dataset, version, (state) => {
      picker.selectedOptions[0].textContent = `v${version.version} · ${state}`;
    });
  }).catch((exc) => replace(view, errorNotice(exc, "Could not load the dataset")));
  return () => stop();
}

// Polls the version while it is busy (its progress as a bar), then shows what the inspection wrote.
function follow(body, dataset, version, onState) {
  const base = `/datasets/${dataset.id}/versions/${version.version}`;
  const bar = h("progress", {max: 1, value: 0, "data-role": "validation-progress"});
  const phase = h("span", {class: "muted"});
  let stopped = false;
  const stop = poll(async () => {
    const current = await get(base);
    onState(current.state);
    if (BUSY.includes(current.state)) {
      const progress = await get(`${base}/progress`).catch(() => null);
      if (progress && progress.total) {
        bar.max = progress.total;
        bar.value = progress.done;
      }
      replace(phase, progress ? `${progress.phase}: ${progress.done} of ${progress.total || "?"} images` : current.state);
      if (!body.querySelector("[data-role=validation-progress]")) {
        replace(body, summary(current), h("section", {class: "panel"}, h("h2", {}, "Validation"), bar, " ", phase));
      }
      return;
    }
    if (!stopped) {
      stopped = true;
      stop();
      await showInspection(body, current, base);
    }
  }, 1000);
  return () => { stopped = true; stop(); };
}

function summary(version) {
  return h("section", {class: "panel dataset-summary"},
    h("dl", {class: "facts"},
      h("dt", {}, "State"), h("dd", {}, stateBadge(version.state)),
      h("dt", {}, "Reference"), h("dd", {class: "mono"}, version.ref),
      h("dt", {}, "Task"), h("dd", {}, version.task || "—"),
      h("dt", {}, "Format"), h("dd", {}, version.format || "—"),
      h("dt", {}, "Size"), h("dd", {}, `${formatBytes(version.size)}${version.files ? ` in ${version.files} files` : ""}`),
      h("dt", {}, "Content hash"), h("dd", {class: "mono", title: version.sha256 || ""},
        version.sha256 ? `sha256 ${version.sha256.slice(0, 16)}…` : "—"),
      h("dt", {}, "Created"), h("dd", {}, formatTime(version.created_at))),
    version.reason ? notice(version.reason, version.state === "invalid" ? "error" : "warn") : null);
}

async function showInspection(body, version, base) {
  const [report, stats] = await Promise.all([get(`${base}/report`).catch(() => null),
    get(`${base}/stats`).catch(() => null)]);
  replace(body, summary(version),
    report ? reportPanel(report) : notice("No validation report.", "muted"),
    stats ? h("section", {class: "panel"}, h("h2", {}, "Statistics"), h("div", {class: "plots"}, plots(stats))) : null,
    stats && stats.previews && stats.previews.length ? h("section", {class: "panel"}, h("h2", {}, "Previews"),
      h("div", {class: "gallery"}, stats.previews.map((name) => h("figure", {},
        h("img", {src: `/api/v1${base}/previews/${encodeURIComponent(name)}`, alt: name, loading: "lazy"}),
        h("figcaption", {class: "muted small"}, name.replace(/\.jpg$/, "").replace("_", " #")))))) : null);
}

function reportPanel(report) {
  if (report.recognised === false) {
    return h("section", {class: "panel", "data-role": "report"}, h("h2", {}, "Validation"), notice(report.error, "error"));
  }
  const counts = report.counts || {};
  return h("section", {class: "panel", "data-role": "report"}, h("h2", {}, "Validation"),
    report.ok ? notice("Usable: every image loads and every annotation passed the checks.", "ok")
      : notice(`Not usable: ${counts.errors} problem${counts.errors === 1 ? "" : "s"}.`, "error"),
    h("dl", {class: "facts"},
      h("dt", {}, "Images"), h("dd", {}, `${counts.images} (${Object.entries(counts.per_split || {})
        .map(([split, n]) => `${split} ${n}`).join(", ")})`),
      h("dt", {}, "Bad images"), h("dd", {}, String(counts.bad_images || 0)),
      h("dt", {}, "Classes"), h("dd", {}, (report.class_names || []).map((name) => h("span", {class: "chip"}, name))),
      report.keypoint_names ? [h("dt", {}, "Joints"), h("dd", {}, report.keypoint_names.join(", "))] : null),
    report.problems && report.problems.length ? h("table", {class: "problems"},
      h("thead", {}, h("tr", {}, ["", "Split", "File", "Problem"].map((t) => h("th", {}, t)))),
      h("tbody", {}, report.problems.map((p) => h("tr", {class: `problem-${p.severity}`},
        h("td", {}, h("span", {class: `badge severity-${p.severity}`}, p.severity)),
        h("td", {}, p.split), h("td", {class: "mono"}, p.file), h("td", {}, p.message))))) : null);
}

// Every plot the statistics allow, for the task.
export function plots(stats) {
  const names = stats.class_names || [];
  const splits = Object.entries(stats.splits || {});
  const out = [
    bars("images-per-split", "Images per split and class", names,
      splits.map(([split, s]) => ({name: split, values: s.per_class})), {yLabel: "images"}),
    bars("class-histogram", "Class histogram", names,
      [{name: INSTANCES[stats.task] || "count", values: stats.class_histogram}], {yLabel: INSTANCES[stats.task]}),
    scatter("image-sizes", "Image sizes (pixels)", stats.image_sizes.points, {xLabel: "width", yLabel: "height"}),
    histogram("aspect-ratios", "Aspect ratios (width / height)", stats.aspect_ratios),
  ];
  if (stats.boxes_per_image) {
    const hist = stats.boxes_per_image;
    out.push(bars("boxes-per-image", stats.task === "pose" ? "People per image" : "Boxes per image",
      hist.counts.map((_, i) => String(hist.edges[i])), [{name: "images", values: hist.counts}], {yLabel: "images"}));
  }
  if (stats.box_sizes) {
    const sizes = stats.box_sizes;
    out.push(bars("box-sizes", "Box sizes (COCO areas: small < 32², medium < 96², large)", ["small", "medium", "large"],
      [{name: "boxes", values: [sizes.small, sizes.medium, sizes.large]}], {yLabel: "boxes"}));
    out.push(histogram("box-sides", "Box side, √area (pixels)", sizes.side, {yLabel: "boxes"}));
  }
  if (stats.mask_pixel_share) {
    out.push(bars("mask-pixel-share", "Mask pixel share per class", names,
      [{name: "share of labelled pixels", values: stats.mask_pixel_share}], {percent: true}));
  }
  if (stats.keypoint_visibility) {
    const vis = stats.keypoint_visibility;
    out.push(bars("keypoint-visibility", "Keypoint visibility per joint", vis.joints,
      [{name: "visible", values: vis.visible}, {name: "occluded", values: vis.occluded},
        {name: "absent", values: vis.absent}], {stacked: true, yLabel: "people"}));
  }
  return out;
}
