// Who may see a job or weights: "private", "public" or "group:<name>"; the choices a user has and a
// control that changes it in place.
import {me} from "./api.js";
import {h} from "./ui.js";

const GROUP = "group:";

export function visibilityLabel(value) {
  if (value === "private") return "private (owner only)";
  if (value === "public") return "public (everyone)";
  if (value && value.startsWith(GROUP)) return `group ${value.slice(GROUP.length)}`;
  return value || "—";
}

// private, each of the signed-in user's groups, public; plus `current` when it is none of those
// (another person's group, seen by an admin).
export function visibilityChoices(current) {
  const values = ["private", ...((me() && me().groups) || []).map((g) => `${GROUP}${g}`), "public"];
  if (current && !values.includes(current)) values.splice(values.length - 1, 0, current);
  return values;
}

export function visibilitySelect(attrs, current) {
  return h("select", attrs, visibilityChoices(current).map((v) => h("option", {value: v, selected: v === current}, visibilityLabel(v))));
}

// A select that saves on change through `save(value)`; shows "saved" or the error beside it.
export function visibilityEditor(current, save, id) {
  const status = h("span", {class: "muted small", role: "status"});
  const select = visibilitySelect({id, "aria-label": "Visibility", onchange: async () => {
    select.disabled = true;
    status.className = "muted small";
    status.textContent = "saving…";
    try {
      await save(select.value);
      status.textContent = "saved";
    } catch (exc) {
      status.className = "field-error";
      status.textContent = exc.message;
    } finally {
      select.disabled = false;
    }
  }}, current);
  return h("span", {class: "visibility-editor"}, select, status);
}
