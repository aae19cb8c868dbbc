// Admins only: people (add, role, highest priority, disable, new password), groups (add, members,
// group admins) and the nodes jobs run on (GPUs, load, jobs, drain; the key that joins one). Each change is
// one request; the lists reload after it.
import {del, get, me, patch, post, PRIORITY_RANGE} from "./api.js";
import {errorNotice, formatTime, h, notice, replace} from "./ui.js";

const ROLES = ["member", "admin"];

// A small form whose fields are sent as one JSON body; the API's error lands on the field it names.
function inlineForm(cls, fields, label, send) {
  const error = h("div", {class: "field-error", role: "alert"});
  const button = h("button", {class: "btn", type: "submit"}, label);
  const form = h("form", {class: `inline ${cls}`, onsubmit: async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    form.querySelectorAll(".field.invalid").forEach((f) => f.classList.remove("invalid"));
    button.disabled = true;
    try {
      await send(Object.fromEntries(fields.map(([key, , input]) => [key, input.type === "checkbox" ? input.checked : input.value.trim()])));
      form.reset();
    } catch (exc) {
      form.querySelector(`.field[data-field="${CSS.escape(exc.field || "")}"]`)?.classList.add("invalid");
      error.textContent = exc.message;
    } finally {
      button.disabled = false;
    }
  }},
    fields.map(([key, text, input]) => h("div", {class: `field${input.type === "checkbox" ? " check" : ""}`, "data-field": key},
      h("label", {for: input.id}, text), input)),
    button, error);
  return form;
}

function input(id, attrs = {}) {
  return h("input", {id, autocomplete: "off", ...attrs});
}

function select(id, values, current) {
  return h("select", {id}, values.map((v) => h("option", {value: v, selected: v === current}, v)));
}

// A control that PATCHes one field of a user when it changes, and reports failure beside itself.
function userSetting(user, key, control, read, onDone) {
  const error = h("span", {class: "field-error", role: "alert"});
  control.addEventListener("change", async () => {
    error.textContent = "";
    control.disabled = true;
    try {
      await patch(`/users/${encodeURIComponent(user.name)}`, {[key]: read(control)});
      await onDone();
    } catch (exc) {
      error.textContent = exc.message;
      control.disabled = false;
    }
  });
  return h("span", {class: "setting"}, control, error);
}

function passwordReset(user) {
  const password = input(`pw-${user.name}`, {type: "password", autocomplete: "new-password", "aria-label": `New password for ${user.name}`});
  const done = h("span", {class: "muted small", role: "status"});
  const form = inlineForm("password-reset", [["password", "New password", password]], "Set", async (body) => {
    await patch(`/users/${encodeURIComponent(user.name)}`, body);
    done.textContent = "password changed";
  });
  form.hidden = true;
  const open = h("button", {class: "btn small ghost", type: "button", onclick: () => {
    form.hidden = !form.hidden;
    done.textContent = "";
    if (!form.hidden) password.focus();
  }}, "Reset password");
  return h("div", {class: "reset"}, open, done, form);
}

function usersCard(onChange) {
  const body = h("div", {}, notice("Loading the users…"));
  const add = inlineForm("add-user", [
    ["name", "Name", input("u-name", {maxlength: 100, placeholder: "login name"})],
    ["display_name", "Display name", input("u-display", {maxlength: 200})],
    ["password", "Password", input("u-password", {type: "password", autocomplete: "new-password"})],
    ["role", "Role", select("u-role", ROLES, "member")],
  ], "Add user", async (fields) => {
    await post("/users", fields);
    await onChange();
  });

  function render(users) {
    replace(body, h("table", {class: "users"},
      h("thead", {}, h("tr", {}, ["Name", "Display name", "Role", "Max priority", "Disabled", "Groups", "Created", ""]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, users.map((u) => {
        const self = u.name === me().name;  // an admin cannot lock themself out from the page
        const role = select(`role-${u.name}`, ROLES, u.role);
        role.disabled = self;
        const priority = input(`prio-${u.name}`, {type: "number", min: 0, max: PRIORITY_RANGE[1], value: u.max_priority ?? 0,
          "aria-label": `Highest priority for ${u.name}`, class: "narrow"});
        const disabled = h("input", {type: "checkbox", id: `disabled-${u.name}`, checked: u.disabled, disabled: self,
          "aria-label": `${u.name} disabled`});
        return h("tr", {"data-user": u.name, class: u.disabled ? "disabled" : ""},
          h("td", {"data-label": "Name", class: "name"}, u.name),
          h("td", {"data-label": "Display name"}, u.display_name || ""),
          h("td", {"data-label": "Role"}, userSetting(u, "role", role, (c) => c.value, onChange)),
          h("td", {"data-label": "Max priority"}, u.role === "admin" ? h("span", {class: "muted"}, `any (up to ${PRIORITY_RANGE[1]})`)
            : userSetting(u, "max_priority", priority, (c) => Number(c.value), onChange)),
          h("td", {"data-label": "Disabled"}, userSetting(u, "disabled", disabled, (c) => c.checked, onChange)),
          h("td", {"data-label": "Groups"}, (u.groups || []).map((g) => h("span", {class: "chip"}, g))),
          h("td", {"data-label": "Created"}, formatTime(u.created_at)),
          h("td", {class: "row-actions"}, passwordReset(u)));
      }))));
  }

  return {el: h("section", {class: "card wide", id: "users"}, h("h2", {}, "Users"), add, body), render,
    fail: (exc) => replace(body, errorNotice(exc, "Could not load the users"))};
}

function groupsCard(onChange) {
  const body = h("div", {}, notice("Loading the groups…"));
  const add = inlineForm("add-group", [["name", "Group name", input("g-name", {maxlength: 100})]], "Add group", async (fields) => {
    await post("/groups", fields);
    await onChange();
  });

  function memberChip(group, member) {
    return h("span", {class: `chip member${member.admin ? " admin" : ""}`, "data-member": member.user},
      member.user, member.admin ? h("b", {title: "group admin"}, " ★") : null,
      h("button", {class: "chip-x", type: "button", title: `Remove ${member.user} from ${group.name}`,
        "aria-label": `Remove ${member.user} from ${group.name}`, onclick: async () => {
          try { await del(`/groups/${encodeURIComponent(group.name)}/members/${encodeURIComponent(member.user)}`); }
          catch (exc) { alert(`Remove failed: ${exc.message}`); }
          await onChange();
        }}, "×"));
  }

  function render(groups, users) {
    if (!groups.length) {
      replace(body, h("div", {class: "empty"}, h("p", {}, "No groups yet.")));
      return;
    }
    replace(body, h("table", {class: "groups"},
      h("thead", {}, h("tr", {}, ["Group", "Members (★ group admin)", "Add a member"].map((t) => h("th", {}, t)))),
      h("tbody", {}, groups.map((g) => {
        const outside = users.filter((u) => !g.members.some((m) => m.user === u.name)).map((u) => u.name);
        const who = select(`member-${g.name}`, outside);
        who.setAttribute("aria-label", `User to add to ${g.name}`);
        const asAdmin = h("input", {type: "checkbox", id: `member-admin-${g.name}`});
        return h("tr", {"data-group": g.name},
          h("td", {class: "name"}, g.name),
          h("td", {}, g.members.length ? g.members.map((m) => memberChip(g, m)) : h("span", {class: "muted"}, "no members")),
          h("td", {}, outside.length ? inlineForm("add-member", [["user", "User", who], ["admin", "group admin", asAdmin]], "Add",
            async (fields) => {
              await post(`/groups/${encodeURIComponent(g.name)}/members`, fields);
              await onChange();
            }) : h("span", {class: "muted"}, "everyone is a member")));
      }))));
  }

  return {el: h("section", {class: "card wide", id: "groups"}, h("h2", {}, "Groups"), add, body), render,
    fail: (exc) => replace(body, errorNotice(exc, "Could not load the groups"))};
}

// The executor's nodes: a Ray cluster's machines with their GPUs, load and jobs, each drainable, and the
// pairing key with the command that joins another one. The local executor has none to list.
function nodesCard() {
  const body = h("div", {}, notice("Loading the nodes…"));

  async function drain(node, on) {
    await post(`/nodes/${encodeURIComponent(node.name)}/drain`, {drain: on});
    await load();
  }

  function render(reply) {
    if (reply.executor !== "ray") {
      replace(body, h("p", {class: "muted"}, "Jobs run on this machine (CAUCHY_EXECUTOR=local)."));
      return;
    }
    const key = h("code", {class: "key", hidden: true}, reply.key || "(not set: RAY_AUTH_TOKEN)");
    replace(body,
      h("p", {}, "Join a GPU server: ", h("code", {}, reply.join), " ",
        h("button", {class: "btn small ghost", type: "button", onclick: () => { key.hidden = !key.hidden; }}, "Show the key"),
        " ", key),
      reply.nodes.length ? h("table", {class: "nodes"},
        h("thead", {}, h("tr", {}, ["Node", "Address", "GPUs in use", "CPU slots in use", "Jobs", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, reply.nodes.map((n) => h("tr", {"data-node": n.name},
          h("td", {class: "name"}, n.name, n.drained ? h("span", {class: "muted"}, " (drained)") : null),
          h("td", {}, n.address),
          h("td", {}, `${n.load.gpus} / ${n.gpus}`),
          h("td", {}, `${n.load.cpu_slots} / ${n.cpus}`),
          h("td", {}, n.jobs.length ? n.jobs.map((id) => h("a", {href: `#/jobs/${id}`}, `#${id} `)) : h("span", {class: "muted"}, "none")),
          h("td", {}, h("button", {class: "btn small", type: "button", onclick: () => drain(n, !n.drained)},
            n.drained ? "Undrain" : "Drain"))))))
        : h("p", {class: "muted"}, "No Cauchy node is alive in the cluster."));
  }

  async function load() {
    try {
      render(await get("/nodes"));
    } catch (exc) {
      replace(body, errorNotice(exc, "Could not load the nodes"));
    }
  }

  return {el: h("section", {class: "card wide", id: "nodes"}, h("h2", {}, "Nodes"), body), load};
}

export function renderAdmin(view) {
  const users = usersCard(refresh);
  const groups = groupsCard(refresh);
  const nodes = nodesCard();
  replace(view, h("div", {class: "page-head"}, h("h1", {}, "Admin"),
    h("span", {class: "muted"}, "People and groups; a job or weights shared with a group is visible to its members")),
  users.el, groups.el, nodes.el);
  nodes.load();

  async function refresh() {
    let userList;
    try {
      ({users: userList} = await get("/users"));
      users.render(userList);
    } catch (exc) {
      users.fail(exc);
      return;
    }
    try {
      groups.render((await get("/groups")).groups, userList);
    } catch (exc) {
      groups.fail(exc);
    }
  }

  refresh();
  return () => {};
}
