// The jobs list: live states, filters (whose jobs, which states), and stop / resume / clone.
import {get, mayManage, me, post} from "./api.js";
import {MetricsFollower} from "./metrics.js";
import {errorNotice, formatDuration, formatTime, formatValue, h, notice, poll, replace, stateBadge} from "./ui.js";
import {visibilityLabel} from "./visibility.js";

const FILTERS = [
  ["All", ""], ["Active", "queued,running,stopping"], ["Queued", "queued"], ["Running", "running,stopping"],
  ["Succeeded", "succeeded"], ["Failed", "failed,lost"], ["Stopped", "stopped"],
];
// Whose jobs: the list holds only what the caller may see; "shared" is what others own among it.
const SCOPES = [["Mine", "mine"], ["Shared with me", "shared"], ["All I can see", "all"]];
const ACTIVE = ["queued", "running", "stopping"];
const followers = new Map();  // job id -> MetricsFollower, kept across visits

export function progressCell(job, follower, position) {
  if (job.state === "queued") return h("span", {class: "muted"}, position ? `#${position} in queue` : "in queue");
  if (job.state === "running" || job.state === "stopping") {
    const progress = follower && follower.value("train", "progress");
    const eta = follower && follower.value("train", "eta_s");
    if (progress === undefined) return h("span", {class: "muted"}, job.state === "stopping" ? "saving a checkpoint…" : "starting…");
    return h("div", {class: "progress-cell"},
      h("div", {class: "bar", role: "progressbar", "aria-valuenow": Math.round(progress * 100)},
        h("span", {style: `width:${(progress * 100).toFixed(1)}%`})),
      h("span", {class: "muted"}, `${Math.round(progress * 100)}% · ETA ${formatDuration(eta)}`));
  }
  const headline = follower && follower.headline();
  if (headline) return h("span", {class: "metric"}, `${headline.name} `, h("b", {}, formatValue(headline.value)));
  return h("span", {class: "muted", title: job.reason || ""}, job.reason ? shorten(job.reason, 48) : "—");
}

function shorten(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

export function actionButtons(job, onDone) {
  const act = (label, cls, fn) => h("button", {class: `btn small ${cls}`, type: "button", onclick: async (ev) => {
    ev.target.disabled = true;
    try { await fn(); } catch (exc) { alert(`${label} failed: ${exc.message}`); }
    onDone();
  }}, label);
  const buttons = [];
  const owner = mayManage(job.user);
  if (owner && ACTIVE.includes(job.state) && job.state !== "stopping") {
    buttons.push(act("Stop", "danger", () => post(`/jobs/${job.id}/stop`)));
  }
  if (owner && job.resumable) {  // the service says whether training has work left (and, on a job's page, a checkpoint)
    buttons.push(act("Resume", "", async () => {
      const created = await post(`/jobs/${job.id}/resume`);
      location.hash = `#/jobs/${created.id}`;
    }));
  }
  buttons.push(h("a", {class: "btn small ghost", href: `#/launch?clone=${job.id}`}, "Clone"));
  return h("div", {class: "actions"}, buttons);
}

export function renderJobs(view, params) {
  let filter = params.get("state") || "";
  let search = params.get("q") || "";
  let scope = SCOPES.some(([, v]) => v === params.get("scope")) ? params.get("scope") : "all";
  const list = h("div", {class: "list"}, notice("Loading jobs…"));
  const count = h("span", {class: "muted"});
  const filterBar = h("div", {class: "segmented", role: "group", "aria-label": "Filter by state"},
    FILTERS.map(([label, value]) => h("button", {type: "button", "data-filter": value, class: value === filter ? "on" : "",
      onclick: () => { filter = value; syncButtons(); refresh(); }}, label)));
  const scopeBar = h("div", {class: "segmented", role: "group", "aria-label": "Whose jobs"},
    SCOPES.map(([label, value]) => h("button", {type: "button", "data-scope": value, class: value === scope ? "on" : "",
      onclick: () => { scope = value; syncButtons(); refresh(); }}, label)));
  const searchBox = h("input", {type: "search", placeholder: "Filter by name or user", value: search,
    "aria-label": "Filter by name or user", oninput: (ev) => { search = ev.target.value; refresh(); }});
  const syncButtons = () => {
    filterBar.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.filter === filter));
    scopeBar.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.scope === scope));
  };

  replace(view,
    h("div", {class: "page-head"}, h("h1", {}, "Jobs"), count, h("a", {class: "btn primary", href: "#/launch"}, "New job")),
    h("div", {class: "toolbar"}, scopeBar, filterBar, searchBox),
    list);

  async function refresh() {
    let page, queued;
    try {
      const whose = scope === "mine" ? `&user=${encodeURIComponent(me().name)}` : "";
      [page, queued] = await Promise.all([get(`/jobs?limit=200&state=${filter}${whose}`), get("/jobs?limit=500&state=queued")]);
    } catch (exc) {
      replace(list, errorNotice(exc, "Could not load the jobs"));
      return;
    }
    const order = queued.jobs.slice().sort((a, b) => b.priority - a.priority || a.id - b.id);
    const positions = new Map(order.map((job, i) => [job.id, i + 1]));
    const needle = search.trim().toLowerCase();
    const jobs = page.jobs.filter((j) => (scope !== "shared" || j.user !== me().name)
      && (!needle || j.name.toLowerCase().includes(needle) || j.user.toLowerCase().includes(needle)));
    await Promise.all(jobs.filter((j) => j.state !== "queued").map((j) => follow(j)));
    count.textContent = `${jobs.length} of ${page.total}`;
    if (!jobs.length) {
      replace(list, h("div", {class: "empty"},
        h("p", {}, page.total || needle ? "No job matches this filter." : "No jobs yet."),
        h("a", {class: "btn primary", href: "#/launch"}, "Launch a job")));
      return;
    }
    replace(list, h("table", {class: "jobs"},
      h("thead", {}, h("tr", {}, ["ID", "Name", "State", "Progress / result", "Owner", "Visibility", "Phase", "GPUs", "Created", ""]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, jobs.map((job) => h("tr", {"data-job": job.id},
        h("td", {"data-label": "ID"}, h("a", {href: `#/jobs/${job.id}`}, `#${job.id}`)),
        h("td", {"data-label": "Name", class: "name"}, h("a", {href: `#/jobs/${job.id}`}, job.name)),
        h("td", {"data-label": "State"}, stateBadge(job.state)),
        h("td", {"data-label": "Progress"}, progressCell(job, followers.get(job.id), positions.get(job.id))),
        h("td", {"data-label": "Owner"}, job.user),
        h("td", {"data-label": "Visibility"}, visibilityLabel(job.visibility)),
        h("td", {"data-label": "Phase"}, job.phase),
        h("td", {"data-label": "GPUs"}, job.resources.gpus || "CPU"),
        h("td", {"data-label": "Created"}, formatTime(job.created_at)),
        h("td", {class: "row-actions"}, actionButtons(job, refresh)))))));
  }

  async function follow(job) {
    let follower = followers.get(job.id);
    if (follower && follower.done) return;
    follower = follower || new MetricsFollower(job.id);
    followers.set(job.id, follower);
    try { await follower.update(); } catch { return; }
    follower.done = !ACTIVE.includes(job.state);
  }

  return poll(refresh, 2000);
}
