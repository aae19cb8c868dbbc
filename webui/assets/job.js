// One job: state and times, resources, live log tail, metrics summary, embedded Visdom charts,
// downloads, its owner and who may see it, and "publish as pretrained weights" once it has ended (the
// owner and admins only).
import {get, mayManage, patch, post} from "./api.js";
import {actionButtons, progressCell} from "./jobs.js";
import {MetricsFollower} from "./metrics.js";
import {errorNotice, formatBytes, formatDuration, formatTime, formatValue, h, notice, poll, replace, stateBadge} from "./ui.js";
import {visibilityEditor, visibilityLabel, visibilitySelect} from "./visibility.js";

const ACTIVE = ["queued", "running", "stopping"];
const LOG_LIMIT = 200 * 1024;  // characters kept in the page

function card(title, body, attrs = {}) {
  return h("section", {class: "card", ...attrs}, h("h2", {}, title), body);
}

function definitions(pairs) {
  return h("dl", {class: "facts"}, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// Why a queued job waits (the scheduler's reason), and when it should start if the jobs ahead keep their pace.
function waitingCell(queue) {
  const start = queue.estimated_start === null ? "start time unknown" : `should start about ${formatTime(queue.estimated_start)}`;
  return h("span", {}, queue.reason, h("br"), h("span", {class: "muted"}, start));
}

// Each time the scheduler took the job's resources for another job (or its node was lost): when, for whom,
// where it resumes.
function preemptionList(preemptions) {
  return h("ul", {class: "plain"}, preemptions.map((p) => h("li", {},
    ...(p.for_job == null ? [`${formatTime(p.at)} its node was lost`]
      : [`${formatTime(p.at)} for `, h("a", {href: `#/jobs/${p.for_job}`}, `#${p.for_job}`)]),
    h("span", {class: "muted"}, ` — ${p.how}; resumes from ${p.checkpoint ? p.checkpoint.split("/").slice(-2).join("/") : "the start"}`))));
}

export function renderJob(view, id) {
  const follower = new MetricsFollower(id);
  const el = {
    title: h("h1", {}), state: h("span"), actions: h("div"),
    status: h("div", {}, notice("Loading…")), times: h("div"), resources: h("div"),
    charts: h("div", {class: "charts"}, notice("Loading…")), metrics: h("div", {}, notice("No metrics yet.", "muted")),
    log: h("pre", {class: "log", tabindex: "0"}, ""), logState: h("span", {class: "muted"}),
    downloads: h("div"), publish: h("div"),
  };
  const log = {stream: "stdout", offset: null, text: ""};
  const streamSelect = h("select", {"aria-label": "Log stream", onchange: (ev) => {
    log.stream = ev.target.value; log.offset = null; log.text = ""; el.log.textContent = ""; updateLog();
  }}, ["stdout", "stderr", "visdom"].map((s) => h("option", {value: s}, s)));
  let job = null, chartsFor = null, publishShown = false, visibility = null, closed = false;

  replace(view,
    h("div", {class: "page-head"}, h("a", {class: "back", href: "#/jobs"}, "← Jobs"), el.title, el.state, el.actions),
    h("div", {class: "cards"}, card("Status", el.status), card("Times", el.times), card("Resources", el.resources)),
    card("Charts", el.charts, {class: "card wide"}),
    h("div", {class: "cards two"},
      card("Metrics", el.metrics),
      card("Downloads", el.downloads)),
    card("Log", h("div", {}, h("div", {class: "log-head"}, streamSelect, el.logState), el.log), {class: "card wide"}),
    el.publish);

  async function update() {
    try {
      job = await get(`/jobs/${id}`);
    } catch (exc) {
      if (exc.status === 404) {  // none, or not shared with the caller: the service does not say which
        if (closed) return;  // a reply that came after the page was left: the view is another page's now
        replace(view, h("div", {class: "page-head"}, h("a", {class: "back", href: "#/jobs"}, "← Jobs"), h("h1", {}, `Job #${id}`)),
          errorNotice(exc, `Could not load job ${id}`),
          h("p", {class: "muted"}, "It does not exist, or its owner has not shared it with you."));
        return;
      }
      replace(el.status, errorNotice(exc, `Could not load job ${id}`));
      el.title.textContent = `Job #${id}`;
      return;
    }
    el.title.textContent = `#${job.id} ${job.name}`;
    replace(el.state, stateBadge(job.state));
    replace(el.actions, actionButtons(job, update));
    visibility = visibility || (mayManage(job.user)
      ? visibilityEditor(job.visibility, (value) => patch(`/jobs/${id}`, {visibility: value}), "job-visibility")
      : h("span", {id: "job-visibility"}, visibilityLabel(job.visibility)));
    if (job.state !== "queued") await follower.update().catch(() => null);
    replace(el.status, definitions([
      ["State", job.state],
      ["Progress", progressCell(job, follower, job.queue_position)],
      job.queue && ["Waiting", waitingCell(job.queue)],
      job.reason && ["Reason", job.reason],
      job.exit_code !== null && ["Exit code", String(job.exit_code)],
      ["Phase", job.phase], ["Owner", job.user], ["Visibility", visibility], ["Priority", `${job.priority_class} (${job.priority})`],
      ["Hypes", job.hypes_name || "submitted document"],
      job.hypes_upgrade && ["From torchcv", upgradeReport(job.hypes_upgrade)],
      job.from_job && ["From job", h("a", {href: `#/jobs/${job.from_job}`}, `#${job.from_job}`)],
    ]));
    replace(el.times, definitions([
      ["Created", formatTime(job.created_at)], ["Started", formatTime(job.started_at)],
      ["Ended", formatTime(job.ended_at)], ["Duration", formatDuration(job.duration_s)],
      job.preemptions.length && ["Preempted", preemptionList(job.preemptions)],
    ]));
    replace(el.resources, definitions([
      ["GPUs", job.resources.gpus ? `${job.resources.gpus} (assigned: ${job.resources.assigned_gpus.join(", ") || "—"})` : "none (CPU)"],
      ["Processes", job.processes.length ? h("table", {class: "mini"},
        h("tbody", {}, job.processes.map((p) => h("tr", {},
          h("td", {}, p.role), h("td", {}, p.pid), h("td", {}, p.cpu_percent === null ? "" : `${Math.round(p.cpu_percent)}% CPU`),
          h("td", {}, `${p.rss_mb} MB`))))) : "none running"],
    ]));
    updateMetrics();
    updateCharts();
    await Promise.all([updateLog(), updateDownloads()]);
    updatePublish();
  }

  function updateMetrics() {
    const rows = follower.rows();
    if (!rows.length) {
      replace(el.metrics, notice(job.state === "queued" ? "Metrics appear once the job runs." : "No metrics yet.", "muted"));
      return;
    }
    replace(el.metrics, h("table", {class: "mini metrics"},
      h("thead", {}, h("tr", {}, ["Phase", "Metric", "Value", "Step"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.map(([phase, name, value, step]) => h("tr", {},
        h("td", {}, phase), h("td", {}, name), h("td", {class: "num"}, formatValue(value)), h("td", {class: "num"}, step))))));
  }

  async function updateCharts() {
    if (job.state === "queued") {
      replace(el.charts, notice("The charts appear once the job starts.", "muted"));
      return;
    }
    if (chartsFor === job.visdom.url) return;  // the iframe stays; Visdom updates it live
    if (!job.visdom.up) {
      replace(el.charts, notice("Starting the charts viewer…", "muted"));
      try {
        await post(`/jobs/${id}/visdom`);
      } catch (exc) {
        replace(el.charts, errorNotice(exc, "The charts are not available"));
        return;
      }
    }
    chartsFor = job.visdom.url;
    replace(el.charts, h("iframe", {src: job.visdom.url, title: `Visdom charts of job ${id}`, loading: "lazy"}),
      h("a", {class: "muted small", href: job.visdom.url, target: "_blank", rel: "noopener"}, "Open the charts in a new tab ↗"));
  }

  async function updateLog() {
    if (job && job.state === "queued") {
      el.logState.textContent = "the log starts when the job runs";
      return;
    }
    const query = log.offset === null ? "" : `&offset=${log.offset}`;
    let chunk;
    try {
      chunk = await get(`/jobs/${id}/logs?stream=${log.stream}${query}`);
    } catch (exc) {
      el.logState.textContent = exc.message;
      return;
    }
    const atBottom = el.log.scrollTop + el.log.clientHeight >= el.log.scrollHeight - 8;
    log.offset = chunk.next_offset;
    if (chunk.text) {
      log.text = (log.text + chunk.text).slice(-LOG_LIMIT);
      el.log.textContent = log.text;
      if (atBottom) el.log.scrollTop = el.log.scrollHeight;
    }
    el.logState.textContent = log.text ? `${formatBytes(chunk.size)} · ${ACTIVE.includes(job.state) ? "following" : "complete"}`
      : "empty so far";
  }

  async function updateDownloads() {
    if (job.state === "queued") {
      replace(el.downloads, notice("Nothing to download before the job runs.", "muted"));
      return;
    }
    const {artifacts} = await get(`/jobs/${id}/artifacts`).catch(() => ({artifacts: []}));
    const wanted = artifacts.filter((a) => !a.path.endsWith(".log") && a.path !== "exit.json");
    if (!wanted.length) {
      replace(el.downloads, notice("No checkpoints or results yet.", "muted"));
      return;
    }
    replace(el.downloads, h("ul", {class: "downloads"}, wanted.map((a) => h("li", {},
      h("a", {href: a.url, download: a.path.split("/").pop()}, a.path), h("span", {class: "muted"}, formatBytes(a.size))))));
  }

  function updatePublish() {
    const can = mayManage(job.user) && !ACTIVE.includes(job.state) && job.last_checkpoint && ["train", "finetune"].includes(job.phase);
    if (!can || publishShown) return;
    publishShown = true;
    const name = h("input", {id: "publish-name", autocomplete: "off", maxlength: 100,
      value: `${job.hypes.network.model_name}_${job.hypes.dataset || "job"}_${job.id}`.replace(/[^A-Za-z0-9_.-]/g, "_")});
    const shareWith = visibilitySelect({id: "publish-visibility"}, "public");
    const error = h("div", {class: "field-error", role: "alert"});
    const result = h("div");
    const button = h("button", {class: "btn", type: "submit"}, "Publish");
    const form = h("form", {class: "inline", onsubmit: async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      form.querySelector(".field").classList.remove("invalid");
      button.disabled = true;
      try {
        const entry = await post(`/jobs/${id}/publish`, {name: name.value.trim(), visibility: shareWith.value});
        replace(result, notice(`Published as ${entry.name} (${formatBytes(entry.size)}). `, "ok"),
          h("a", {href: "#/weights"}, "See the weights →"));
      } catch (exc) {
        form.querySelector(".field").classList.add("invalid");
        error.textContent = exc.message;
      } finally {
        button.disabled = false;
      }
    }},
      h("div", {class: "field", "data-field": "name"}, h("label", {for: "publish-name"}, "Weights name"), name, error),
      h("div", {class: "field narrow", "data-field": "visibility"}, h("label", {for: "publish-visibility"}, "Visible to"), shareWith),
      button);
    replace(el.publish, card("Publish as pretrained weights", h("div", {},
      h("p", {class: "muted"}, "Copies the best checkpoint's model weights to the weights host, where new jobs can start from them."),
      form, result), {class: "card wide", id: "publish"}));
  }

  const stop = poll(update, 2000);
  return () => { closed = true; stop(); };
}

// What the translation of an old torchcv hypes file did (hypes_upgrade.json): each key translated or ignored.
function upgradeReport(report) {
  const line = (c) => h("li", {}, h("code", {}, c.key),
    c.kind === "translated" ? `${c.to && c.to !== c.key ? ` → ${c.to}` : ""}${c.note ? ` (${c.note})` : ""}` : `: ignored, ${c.note}`);
  return h("details", {class: "hypes-upgrade"},
    h("summary", {}, `${report.translated.length} keys translated, ${report.ignored.length} ignored`),
    h("ul", {}, [...report.translated, ...report.ignored].map(line)));
}
