// The page's router: #/jobs, #/jobs/<id>, #/launch[?clone=<id>], #/datasets, #/datasets/<id>[?version=N],
// #/weights, #/deployments, #/tokens, #/admin; the sign-in form stands in for all of them while nobody is signed in.
import {renderAdmin} from "./admin.js";
import {get, loadSession, me, signOut} from "./api.js";
import {renderDataset, renderDatasets} from "./datasets.js";
import {renderDeployments} from "./deployments.js";
import {renderJob} from "./job.js";
import {renderJobs} from "./jobs.js";
import {renderLaunch} from "./launch.js";
import {renderSignIn} from "./signin.js";
import {renderTokens} from "./tokens.js";
import {errorNotice, h, notice, poll, replace} from "./ui.js";
import {renderWeights} from "./weights.js";

const view = document.getElementById("view");
const account = document.getElementById("account");
let cleanup = () => {};
let stopHealth = () => {};

const PAGES = {
  jobs: ["Jobs", (params) => renderJobs(view, params)],
  launch: ["Launch", (params) => renderLaunch(view, params)],
  datasets: ["Datasets", () => renderDatasets(view)],
  weights: ["Weights", () => renderWeights(view)],
  deployments: ["Deployments", () => renderDeployments(view)],
  tokens: ["Access tokens", () => renderTokens(view)],
  admin: ["Admin", () => renderAdmin(view), () => me().role === "admin"],
};

function route() {
  cleanup();
  cleanup = () => {};
  if (!me()) return;
  const [path, query] = (location.hash.replace(/^#/, "") || "/jobs").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const section = parts[0] || "jobs";
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("on", a.dataset.nav === section));
  window.scrollTo(0, 0);
  const page = PAGES[section];
  if (section === "jobs" && parts[1] && /^\d+$/.test(parts[1])) {
    document.title = `Job #${parts[1]} · Cauchy`;
    cleanup = renderJob(view, Number(parts[1]));
  } else if (section === "datasets" && parts[1] && /^\d+$/.test(parts[1])) {
    document.title = `Dataset #${parts[1]} · Cauchy`;
    cleanup = renderDataset(view, Number(parts[1]), params);
  } else if (page && (!page[2] || page[2]())) {
    document.title = `${page[0]} · Cauchy`;
    cleanup = page[1](params) || (() => {});
  } else {
    replace(view, notice("No such page.", "error"), h("a", {href: "#/jobs"}, "Go to the jobs"));
  }
}

function showAccount() {
  const user = me();
  document.body.classList.toggle("signed-out", !user);
  account.hidden = !user;
  document.querySelector('[data-nav="admin"]').hidden = !user || user.role !== "admin";
  if (!user) return;
  const who = document.getElementById("who");
  who.textContent = user.display_name || user.name;
  who.title = `${user.name} · ${user.role}${user.groups.length ? ` · groups: ${user.groups.join(", ")}` : ""}`;
}

function signedIn() {
  showAccount();
  stopHealth();
  stopHealth = poll(checkHealth, 10000);
  route();
}

function askToSignIn(reason = "") {
  cleanup();
  stopHealth();
  showAccount();
  document.title = "Sign in · Cauchy";
  cleanup = renderSignIn(view, signedIn, reason);
}

const health = document.getElementById("health");
async function checkHealth() {
  try {
    const status = await get("/health");
    health.textContent = `${status.gpus.length} GPU${status.gpus.length === 1 ? "" : "s"} · ${status.cpu_slots} CPU slots`;
    health.className = "health ok";
  } catch {
    health.textContent = "service unreachable";
    health.className = "health down";
  }
}

document.getElementById("sign-out").addEventListener("click", async () => {
  cleanup();
  cleanup = () => {};
  stopHealth();
  await signOut().catch(() => null);
  askToSignIn();
});
window.addEventListener("cauchy:signed-out", () => askToSignIn("Your session has ended: sign in again."));
window.addEventListener("hashchange", route);

loadSession().then((user) => (user ? signedIn() : askToSignIn()))
  .catch((exc) => replace(view, errorNotice(exc, "Could not reach the control service")));
