// The sign-in form: shown when the service does not know the caller (GET /auth/me is a 401) and on
// any 401 afterwards; its errors (wrong name or password, too many attempts) appear in the form.
import {signIn} from "./api.js";
import {h, replace} from "./ui.js";

function describe(exc) {
  if (exc.status === 401) return "The name or password is not right.";
  if (exc.status === 429) {
    const wait = exc.retryAfter ? ` Try again in ${exc.retryAfter} s.` : " Wait a moment before trying again.";
    return `Too many failed sign-ins.${wait}`;
  }
  return exc.message;
}

export function renderSignIn(view, onSignedIn, reason = "") {
  const name = h("input", {id: "signin-name", name: "username", autocomplete: "username", required: true, maxlength: 100});
  const password = h("input", {id: "signin-password", name: "password", type: "password", autocomplete: "current-password",
    required: true});
  const error = h("div", {class: "form-error", role: "alert", hidden: !reason}, reason);
  const button = h("button", {class: "btn primary", type: "submit"}, "Sign in");
  const form = h("form", {class: "signin card", onsubmit: async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      await signIn(name.value.trim(), password.value);
    } catch (exc) {
      error.textContent = describe(exc);
      error.hidden = false;
      password.value = "";
      password.focus();
      return;
    } finally {
      button.disabled = false;
    }
    onSignedIn();
  }},
    h("h1", {}, "Sign in to Cauchy"),
    error,
    h("div", {class: "field"}, h("label", {for: "signin-name"}, "Name"), name),
    h("div", {class: "field"}, h("label", {for: "signin-password"}, "Password"), password),
    h("div", {class: "form-actions"}, button),
    h("p", {class: "muted small"}, "No account yet? An administrator adds people on the Admin page or with ",
      h("code", {}, "cauchy user add"), "."));
  replace(view, form);
  name.focus();
  return () => {};
}
