// Deployments: published weights served over HTTP at /serve/<name>/ (docs/serving.md). The list polls
// each deployment's status, replicas, metrics (requests, batch sizes, latency percentiles) and shows
// copy-ready curl and Python calls; "Deploy" on a weights row opens deployForm.
import {del, get, mayManage, post} from "./api.js";
import {errorNotice, formatTime, formatValue, h, notice, poll, replace, stateBadge} from "./ui.js";

export function renderDeployments(view) {
  const body = h("div", {}, notice("Loading the deployments…"));
  const opened = new Set();  // deployments whose "Call it" is open: it stays open across the polls
  replace(view, h("div", {class: "page-head"}, h("h1", {}, "Deployments"),
    h("span", {class: "muted"}, "Models answering predictions at /serve/<name>/predict; deploy one from the Weights page")), body);
  return poll(async () => {
    try {
      const {deployments} = await get("/deployments");
      if (!deployments.length) {
        replace(body, h("div", {class: "empty"}, h("p", {}, "Nothing deployed yet."),
          h("p", {class: "muted"}, "Use \u201cDeploy\u201d on a row of the Weights page.")));
        return;
      }
      const shown = await Promise.all(deployments.map((d) => get(`/deployments/${encodeURIComponent(d.name)}`).catch(() => d)));
      replace(body, shown.map((d) => card(d, opened)));
    } catch (exc) {
      replace(body, errorNotice(exc, "Could not load the deployments"));
    }
  }, 3000);
}

function card(d, opened) {
  const m = d.metrics || {};
  const latency = m.latency_ms || {};
  return h("section", {class: "panel", "data-deployment": d.name},
    h("div", {class: "page-head"}, h("h2", {}, d.name), stateBadge(d.status),
      h("span", {class: "muted"}, `weights ${d.weights} · ${d.replicas} replica${d.replicas === 1 ? "" : "s"} on ${d.device} · `
        + `${d.backend} · batch ≤ ${d.max_batch}, wait ≤ ${formatValue(d.max_wait_ms)} ms · ${d.owner}`),
      mayManage(d.owner) ? h("button", {class: "btn small ghost", type: "button", onclick: async (event) => {
        event.target.disabled = true;
        await del(`/deployments/${encodeURIComponent(d.name)}`).catch((exc) => alert(exc.message));
      }}, "Delete") : null),
    h("dl", {class: "facts"},
      h("dt", {}, "Replicas"), h("dd", {}, (d.replica_states || []).map((r) => h("div", {"data-replica": r.index},
        stateBadge(r.state), ` #${r.index}`, r.port ? ` port ${r.port}` : "", r.gpu ? ` GPU ${r.gpu}` : "",
        r.restarts ? ` · ${r.restarts} restarts` : "", r.started_at ? ` · since ${formatTime(r.started_at)}` : "",
        r.reason ? h("div", {class: "muted"}, r.reason) : null))),
      h("dt", {}, "Requests"), h("dd", {"data-metric": "requests"}, `${m.requests ?? "—"} requests (${m.images ?? "—"} images, ${m.errors ?? "—"} refused)`),
      h("dt", {}, "Batches"), h("dd", {"data-metric": "batches"}, `${m.batches ?? "—"}, mean size ${m.mean_batch ?? "—"} `,
        Object.entries(m.batch_sizes || {}).map(([size, count]) => h("span", {class: "chip"}, `${size}: ${count}`))),
      h("dt", {}, "Latency"), h("dd", {"data-metric": "latency"},
        `p50 ${latency.p50 ?? "—"} ms · p99 ${latency.p99 ?? "—"} ms (latest requests)`)),
    h("details", {open: opened.has(d.name), ontoggle: (event) => (event.target.open ? opened.add(d.name) : opened.delete(d.name))},
      h("summary", {}, "Call it"),
      ...Object.entries(d.examples || {}).map(([kind, text]) => h("div", {class: "field"},
        h("span", {class: "muted"}, kind.replace("_", " ")),
        h("div", {class: "copy-row"}, h("pre", {class: "mono", "data-example": kind}, text),
          h("button", {class: "btn small ghost", type: "button", onclick: () => navigator.clipboard.writeText(text)}, "Copy"))))));
}

// A small form under a weights row: replicas, device, batching; on success, the deployments page.
export function deployForm(weights) {
  const error = h("div", {class: "field-error"});
  const field = (label, input) => h("label", {class: "field"}, h("span", {}, label), input);
  const inputs = {
    name: h("input", {name: "name", value: weights.name, required: true}),
    replicas: h("input", {name: "replicas", type: "number", min: 0, value: 1}),
    device: h("select", {name: "device"}, h("option", {value: "cpu"}, "cpu"), h("option", {value: "cuda"}, "cuda")),
    max_batch: h("input", {name: "max_batch", type: "number", min: 1, value: 8}),
    max_wait_ms: h("input", {name: "max_wait_ms", type: "number", min: 0, step: "any", value: 5}),
    // ONNX Runtime runs the weights' ONNX export: offered once they have one.
    backend: h("select", {name: "backend"}, h("option", {value: "torch"}, "torch"),
      (weights.exports || {}).onnx ? h("option", {value: "onnxruntime"}, "onnxruntime") : null),
  };
  const form = h("form", {class: "panel deploy-form", onsubmit: async (event) => {
    event.preventDefault();
    replace(error);
    try {
      await post("/deployments", {weights: weights.name, name: inputs.name.value, device: inputs.device.value,
        replicas: Number(inputs.replicas.value), max_batch: Number(inputs.max_batch.value),
        max_wait_ms: Number(inputs.max_wait_ms.value), backend: inputs.backend.value});
      location.hash = "#/deployments";
    } catch (exc) {
      replace(error, exc.field ? `${exc.field}: ${exc.message}` : exc.message);
    }
  }},
  h("div", {class: "grid"}, field("Deployment name", inputs.name), field("Replicas", inputs.replicas),
    field("Device", inputs.device), field("Max batch", inputs.max_batch), field("Max wait (ms)", inputs.max_wait_ms),
    field("Backend", inputs.backend)),
  error, h("div", {class: "form-actions"}, h("button", {class: "btn primary", type: "submit"}, "Deploy")));
  return form;
}
