// The weights host's manifest as far as the caller may see it: what new jobs can start from, who
// published each and who may use it (its owner and admins change that); "Deploy" serves them over HTTP.
import {get, mayManage, patch} from "./api.js";
import {deployForm} from "./deployments.js";
import {errorNotice, formatBytes, formatTime, formatValue, h, notice, replace} from "./ui.js";
import {visibilityEditor, visibilityLabel} from "./visibility.js";

export function renderWeights(view) {
  const body = h("div", {}, notice("Loading the weights…"));
  replace(view, h("div", {class: "page-head"}, h("h1", {}, "Weights"),
    h("span", {class: "muted"}, "Pretrained weights served at /weights/; name one in a job's Pretrained weights field")), body);
  const deploying = h("div", {});
  get("/weights").then(({weights}) => {
    if (!weights.length) {
      replace(body, h("div", {class: "empty"}, h("p", {}, "No weights published yet."),
        h("p", {class: "muted"}, "Open a finished job and use \u201cPublish as pretrained weights\u201d.")));
      return;
    }
    replace(body, h("table", {class: "weights"},
      h("thead", {}, h("tr", {}, ["Name", "Task", "Architecture", "Classes", "Size", "Metrics", "Source", "Owner", "Visibility", "Created", ""]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, weights.map((w) => h("tr", {"data-weights": w.name},
        h("td", {"data-label": "Name", class: "name"}, w.name, h("div", {class: "muted mono", title: w.sha256}, `sha256 ${w.sha256.slice(0, 12)}…`)),
        h("td", {"data-label": "Task"}, w.task),
        h("td", {"data-label": "Architecture"}, w.architecture),
        h("td", {"data-label": "Classes", title: w.class_names.join(", ")},
          `${w.num_classes}`, h("div", {class: "muted"}, classList(w.class_names))),
        h("td", {"data-label": "Size"}, formatBytes(w.size)),
        h("td", {"data-label": "Metrics"}, metricList(w.metrics)),
        h("td", {"data-label": "Source"}, w.source_job ? h("a", {href: `#/jobs/${w.source_job}`}, `job #${w.source_job}`)
          : h("span", {class: "muted"}, "setup script")),
        h("td", {"data-label": "Owner"}, w.owner),
        h("td", {"data-label": "Visibility"}, mayManage(w.owner)
          ? visibilityEditor(w.visibility, (value) => patch(`/weights/${encodeURIComponent(w.name)}`, {visibility: value}))
          : visibilityLabel(w.visibility)),
        h("td", {"data-label": "Created"}, formatTime(w.created)),
        h("td", {class: "row-actions"}, h("a", {class: "btn small ghost", href: w.url, download: w.file}, "Download"),
          w.hypes ? h("button", {class: "btn small ghost", type: "button", "data-action": "deploy",
            onclick: () => replace(deploying, h("h2", {}, `Deploy ${w.name}`), deployForm(w))}, "Deploy") : null))))),
    deploying);
  }).catch((exc) => replace(body, errorNotice(exc, "Could not load the weights")));
  return () => {};
}

function classList(names) {
  return names.length > 6 ? `${names.slice(0, 6).join(", ")}, …` : names.join(", ");
}

function metricList(metrics) {
  const shown = ["top1", "top5", "map", "map50", "miou"].filter((k) => k in (metrics || {}));
  if (!shown.length) return h("span", {class: "muted"}, "—");
  return h("span", {}, shown.map((k) => h("span", {class: "chip"}, `${k} ${formatValue(metrics[k])}`)));
}
