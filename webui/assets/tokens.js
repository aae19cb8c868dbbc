// Personal access tokens for the CLI, scripts and the legacy endpoints: create one (shown once, with a
// copy button), list them with when each was last used, revoke.
import {del, get, post} from "./api.js";
import {errorNotice, formatTime, h, notice, replace} from "./ui.js";

const EXPIRIES = [["", "never"], ["7", "in 7 days"], ["30", "in 30 days"], ["90", "in 90 days"], ["365", "in a year"]];

async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    input.select();
    document.execCommand("copy");
  }
}

function createdCard(token) {
  const value = h("input", {id: "new-token", class: "mono", readonly: true, value: token.token, "aria-label": "The new token",
    onfocus: (ev) => ev.target.select()});
  const copied = h("span", {class: "muted small", role: "status"});
  return h("section", {class: "card wide token-once"},
    h("h2", {}, `Token “${token.name}” created`),
    h("p", {class: "notice warn"}, "Copy it now: it is shown only this once. Anyone holding it acts as you until it is revoked",
      token.expires_at ? ` or expires (${formatTime(token.expires_at)}).` : "."),
    h("div", {class: "copy-row"}, value,
      h("button", {class: "btn", type: "button", onclick: async () => {
        await copy(token.token, value);
        copied.textContent = "copied";
      }}, "Copy"), copied),
    h("p", {class: "muted small"}, "Use it as ", h("code", {}, "Authorization: Bearer <token>"), ", or store it with ",
      h("code", {}, "cauchy login"), "."));
}

export function renderTokens(view) {
  const shown = h("div");
  const list = h("div", {}, notice("Loading your tokens…"));
  const name = h("input", {id: "token-name", autocomplete: "off", maxlength: 100, required: true, placeholder: "e.g. laptop CLI"});
  const expiry = h("select", {id: "token-expiry"}, EXPIRIES.map(([value, label]) => h("option", {value}, label)));
  const error = h("div", {class: "field-error", role: "alert"});
  const button = h("button", {class: "btn primary", type: "submit"}, "Create token");
  const form = h("form", {class: "inline card", onsubmit: async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const body = {name: name.value.trim()};
    if (expiry.value) body.expires_in_days = Number(expiry.value);
    button.disabled = true;
    try {
      const token = await post("/tokens", body);
      replace(shown, createdCard(token));
      name.value = "";
      await refresh();
    } catch (exc) {
      error.textContent = exc.message;
    } finally {
      button.disabled = false;
    }
  }},
    h("div", {class: "field", "data-field": "name"}, h("label", {for: "token-name"}, "Name"), name, error),
    h("div", {class: "field narrow", "data-field": "expires_in_days"}, h("label", {for: "token-expiry"}, "Expires"), expiry),
    button);

  replace(view,
    h("div", {class: "page-head"}, h("h1", {}, "Access tokens"),
      h("span", {class: "muted"}, "For the cauchy CLI, scripts and the /cauchy/* endpoints; each acts as you")),
    form, shown, list);

  async function refresh() {
    let tokens;
    try {
      ({tokens} = await get("/tokens"));
    } catch (exc) {
      replace(list, errorNotice(exc, "Could not load your tokens"));
      return;
    }
    if (!tokens.length) {
      replace(list, h("div", {class: "empty"}, h("p", {}, "No tokens yet.")));
      return;
    }
    replace(list, h("table", {class: "tokens"},
      h("thead", {}, h("tr", {}, ["Name", "Created", "Last used", "Expires", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, tokens.map((t) => h("tr", {"data-token": t.id},
        h("td", {"data-label": "Name", class: "name"}, t.name),
        h("td", {"data-label": "Created"}, formatTime(t.created_at)),
        h("td", {"data-label": "Last used"}, t.last_used_at ? formatTime(t.last_used_at) : h("span", {class: "muted"}, "never")),
        h("td", {"data-label": "Expires"}, t.expires_at ? formatTime(t.expires_at) : h("span", {class: "muted"}, "never")),
        h("td", {class: "row-actions"}, h("button", {class: "btn small danger", type: "button", onclick: async (ev) => {
          if (!confirm(`Revoke the token “${t.name}”? Scripts using it stop working.`)) return;
          ev.target.disabled = true;
          try { await del(`/tokens/${t.id}`); } catch (exc) { alert(`Revoke failed: ${exc.message}`); }
          await refresh();
        }}, "Revoke")))))));
  }

  refresh();
  return () => {};
}
