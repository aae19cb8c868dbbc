// The page's router: #/jobs, #/jobs/<id>, #/launch[?clone=<id>], #/weights.
import {get} from "./api.js";
import {renderJob} from "./job.js";
import {renderJobs} from "./jobs.js";
import {renderLaunch} from "./launch.js";
import {h, notice, poll, replace} from "./ui.js";
import {renderWeights} from "./weights.js";

const view = document.getElementById("view");
let cleanup = () => {};

function route() {
  cleanup();
  const [path, query] = (location.hash.replace(/^#/, "") || "/jobs").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const section = parts[0] || "jobs";
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("on", a.dataset.nav === section));
  window.scrollTo(0, 0);
  if (section === "jobs" && parts[1] && /^\d+$/.test(parts[1])) {
    document.title = `Job #${parts[1]} · Cauchy`;
    cleanup = renderJob(view, Number(parts[1]));
  } else if (section === "jobs") {
    document.title = "Jobs · Cauchy";
    cleanup = renderJobs(view, params);
  } else if (section === "launch") {
    document.title = "Launch · Cauchy";
    cleanup = renderLaunch(view, params) || (() => {});
  } else if (section === "weights") {
    document.title = "Weights · Cauchy";
    cleanup = renderWeights(view);
  } else {
    replace(view, notice("No such page.", "error"), h("a", {href: "#/jobs"}, "Go to the jobs"));
    cleanup = () => {};
  }
}

const health = document.getElementById("health");
poll(async () => {
  try {
    const status = await get("/health");
    health.textContent = `${status.gpus.length} GPU${status.gpus.length === 1 ? "" : "s"} · ${status.cpu_slots} CPU slots`;
    health.className = "health ok";
  } catch {
    health.textContent = "service unreachable";
    health.className = "health down";
  }
}, 10000);

window.addEventListener("hashchange", route);
route();
