// The DOM: what the page shows. No requests here; main.js passes the data and the handlers.
export const $ = (selector) => document.querySelector(selector);

export function el(tag, props = {}, ...children) { // props: on<event> listeners, dataset, class, or DOM properties
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "class") node.className = v;
    else if (k === "testid") node.dataset.testid = v;
    else if (k.startsWith("aria-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c != null && c !== false));
  return node;
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "");

// Header -------------------------------------------------------------------------
const CONNECTION_WORDS = { live: "live", reconnecting: "reconnecting…", offline: "offline" };

export function showConnection(state) {
  const node = $("#connection-state");
  node.dataset.state = state;
  node.textContent = CONNECTION_WORDS[state];
  node.title = { live: "changes made anywhere appear here at once",
    reconnecting: "the live feed dropped: reconnecting; nothing will be missed",
    offline: "no connection: presses are kept in this browser and sent when it is back" }[state];
}

export function showPending(count) {
  const node = $("#pending-count");
  node.dataset.count = String(count);
  node.textContent = String(count);
  $("#pending").hidden = count === 0;
}

export function showSignedIn(principal) {
  $("#who").textContent = principal ? `${principal.user} · ${principal.org}` : "";
  $("#sign-out").hidden = !principal;
  $("#views").hidden = !principal;
  $("#app").hidden = !principal;
  $("#sign-in-screen").hidden = !!principal;
}

export function showSignIn(message, devLogin) {
  showSignedIn(null);
  $("#sign-in-message").textContent = message || "Sign in with your access token to see your organisation's leads.";
  $("#dev-sign-in").hidden = !devLogin;
  $("#dev-sign-in").textContent = devLogin ? `Sign in as demo agent (${devLogin.user} · ${devLogin.org})` : "";
  $("#token-input").focus();
}

// Notices: successes fade by themselves, errors and warnings stay until dismissed, a few at most --------
const MAX_NOTICES = 4;
const FADE_MS = 6000;

export function notify(kind, text, details = []) {
  const box = el("div", { testid: "notice", class: "notice", role: kind === "error" ? "alert" : "status" });
  const handle = {
    update(k, t, d = []) {
      clearTimeout(handle.timer);
      box.dataset.kind = k; box.className = "notice " + k;
      box.setAttribute("role", k === "error" ? "alert" : "status");
      box.replaceChildren(...[el("span", { class: "text", textContent: t }), // (replaceChildren writes a null as "null")
        d.length ? el("ul", {}, ...d.map((x) => el("li", { textContent: x }))) : null,
        k === "error" || k === "warning" ? el("button", { type: "button", class: "dismiss", "aria-label": "dismiss", textContent: "×",
          onclick: () => box.remove() }) : null].filter(Boolean));
      if (!box.isConnected) { $("#notices").prepend(box); trim(); }
      if (k === "success") handle.timer = setTimeout(() => box.remove(), FADE_MS);
      return handle;
    },
    remove() { clearTimeout(handle.timer); box.remove(); },
  };
  return handle.update(kind, text, details);
}

function trim() {
  const all = [...$("#notices").children];
  for (let i = all.length - 1; i >= 0 && $("#notices").children.length > MAX_NOTICES; i--) {
    if (all[i].dataset.kind !== "error" && all[i].dataset.kind !== "warning") all[i].remove(); // the oldest quiet ones go first
  }
  while ($("#notices").children.length > MAX_NOTICES) $("#notices").lastChild.remove();
}

// Leads table --------------------------------------------------------------------
/** model: {leads: [lead], filter, moves, pending: Map(id -> n), projected: Map(id -> status), selected: Set, open} */
export function renderRows(model, on) {
  const focused = document.activeElement && document.activeElement.closest("tr[data-lead-id]");
  const focusKey = focused && [focused.dataset.leadId, document.activeElement.dataset.testid || document.activeElement.className];
  const shown = model.leads.filter((l) => !model.filter || l.status === model.filter);
  $("#rows").replaceChildren(...shown.map((lead) => row(lead, model, on)));
  $("#empty").hidden = shown.length > 0;
  $("#select-all").checked = shown.length > 0 && shown.every((l) => model.selected.has(l.id));
  if (focusKey) {
    const again = document.querySelector(`tr[data-lead-id="${focusKey[0]}"] [data-testid="${focusKey[1]}"]`) ||
      document.querySelector(`tr[data-lead-id="${focusKey[0]}"] .${CSS.escape(String(focusKey[1]).split(" ")[0] || "x")}`);
    if (again) again.focus();
  }
}

function row(lead, model, on) {
  const pending = model.pending.get(lead.id) || 0;
  const from = model.projected.get(lead.id) || lead.status;
  const moves = model.moves[from] || [];
  const control = el("select", { testid: "status-control", "aria-label": `move ${lead.name} to`,
    disabled: moves.length === 0, onchange: (e) => { const to = e.target.value; e.target.value = ""; if (to) on.move(lead, to); } },
  el("option", { value: "", textContent: moves.length ? "Move to…" : "final", disabled: true, selected: true }),
  ...moves.map((s) => el("option", { value: s, textContent: s })));
  return el("tr", { testid: "lead-row", dataset: { leadId: lead.id, status: lead.status, pending: String(pending) },
    class: [model.open === lead.id ? "current" : "", pending ? "has-pending" : "", lead.flash ? "flash" : ""].join(" ") },
  el("td", { class: "sel" }, el("input", { type: "checkbox", testid: "bulk-select", checked: model.selected.has(lead.id),
    "aria-label": `select ${lead.name}`, onchange: (e) => on.select(lead.id, e.target.checked) })),
  el("td", { class: "name" }, el("button", { type: "button", class: "link", textContent: lead.name,
    "aria-label": `open ${lead.name}`, onclick: () => on.open(lead.id) })),
  el("td", { class: "phone", textContent: lead.phone }),
  el("td", { class: "status" }, el("span", { class: "pill " + lead.status, textContent: lead.status }),
    pending ? el("span", { class: "pending-mark", title: "a press for this lead waits to be sent or answered",
      textContent: `${pending} pending${from !== lead.status ? ` → ${from}` : ""}` }) : null),
  el("td", { class: "changed", textContent: when(lead.status_changed_at) }),
  el("td", { class: "moves" }, control),
  el("td", { class: "act" }, el("button", { type: "button", class: "quiet", textContent: "SMS",
    "aria-label": `text ${lead.name}`, onclick: () => on.text(lead.id) })));
}

export function renderStatusChoices(statuses) {
  $("#status-filter").replaceChildren(el("option", { value: "", textContent: "all statuses" }),
    ...statuses.map((s) => el("option", { value: s, textContent: s })));
  $("#bulk-status").replaceChildren(...statuses.map((s) => el("option", { value: s, textContent: s })));
}

/** plan: {selected, change, blocked: [[lead, reason]]} */
export function renderBulk(plan, target) {
  $("#selected-count").textContent = plan.selected ? `${plan.selected} selected` : "No lead selected";
  const apply = $("#bulk-apply");
  apply.disabled = plan.selected === 0;
  apply.textContent = plan.selected ? `Move ${plan.change} lead${plan.change === 1 ? "" : "s"} to ${target}` : "Apply";
  apply.dataset.willChange = String(plan.change);
  $("#bulk-hint").textContent = plan.blocked.length
    ? `${plan.blocked.length} cannot move: ${plan.blocked.map(([l, r]) => `${l.name} (${r})`).join(", ")}; nothing changes unless all can`
    : plan.selected && plan.change < plan.selected ? `${plan.selected - plan.change} already ${target}` : "";
}

// Lead panel ---------------------------------------------------------------------
export function renderPanel(lead, optedOut) {
  $("#lead-panel").hidden = !lead;
  if (!lead) return;
  $("#lead-title").textContent = lead.name;
  $("#lead-meta").textContent = `${lead.phone} · ${lead.status}${optedOut ? " · opted out of SMS" : ""}`;
}

export function fill(list, items) { list.replaceChildren(...items); list.classList.toggle("empty-list", items.length === 0); }

const IDS = ["appointmentId", "proposalId", "paymentId", "contractId", "campaignId", "documentId"];

/** fill(), the focus (and the caret) staying on the same control: found again by its testid and data ids. */
export function refill(list, items) {
  const a = document.activeElement;
  const key = a && list.contains(a) && a.dataset.testid ? `[data-testid="${a.dataset.testid}"]` +
    IDS.filter((k) => a.dataset[k]).map((k) => `[data-${k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}="${CSS.escape(a.dataset[k])}"]`).join("") : null;
  let caret = null;
  try { caret = key ? [a.selectionStart, a.selectionEnd] : null; } catch { /* not a text input */ }
  fill(list, items);
  const again = key && list.querySelector(key);
  if (!again) return;
  again.focus();
  try { if (caret && caret[0] != null) again.setSelectionRange(...caret); } catch { /* not a text input */ }
}

/** A control whose value outlives re-rendering: what is typed is kept in `drafts` under `key` (else `initial`). */
export function kept(drafts, key, tag, props, initial = "", ...children) {
  const node = el(tag, { ...props, oninput: (e) => drafts.set(key, e.target.value) }, ...children);
  node.value = drafts.has(key) ? drafts.get(key) : initial;
  return node;
}

const pad = (n) => String(n).padStart(2, "0");

/** An instant as a datetime-local value ("2030-01-02T15:00", the browser's time zone). */
export function localInput(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local value (or a date and a time) as ISO 8601 with the browser's UTC offset; null when empty or wrong. */
export function isoFromLocal(value) {
  const d = value ? new Date(value) : null;
  if (!d || Number.isNaN(d.getTime()) || !/T/.test(value)) return null;
  const offset = -d.getTimezoneOffset(), abs = Math.abs(offset);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `${offset >= 0 ? "+" : "-"}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export function renderSmsHistory(items) {
  fill($("#sms-history"), items.map((m) => el("li", { dataset: { smsId: m.id, smsStatus: m.status } },
    el("div", { class: "top" }, el("span", { class: "pill " + m.status, textContent: m.status }),
      el("span", { class: "meta", textContent: [when(m.created_at), m.segments ? `${m.segments} segment${m.segments > 1 ? "s" : ""}` : "",
        m.error_code ? `error ${m.error_code}` : ""].filter(Boolean).join(" · ") })),
    el("div", { class: "body", textContent: m.body }))));
}

export function renderHistory(items) {
  fill($("#history"), items.map((h) => el("li", {}, el("div", { class: "top" },
    el("span", { class: "pill " + h.from, textContent: h.from }), el("span", { textContent: "→" }),
    el("span", { class: "pill " + h.to, textContent: h.to })),
  el("div", { class: "meta", textContent: `${when(h.at)} by ${h.by}` }))));
}

export function renderTemplates(templates) {
  const select = $("#sms-template"), chosen = select.value;
  select.replaceChildren(el("option", { value: "", textContent: "none: write a message" }),
    ...templates.map((t) => el("option", { value: t.id, textContent: t.name })));
  select.value = templates.some((t) => t.id === chosen) ? chosen : "";
}

export function renderSmsCount(text, count) {
  $("#sms-count").textContent = text ? `${text.length} / 1600 characters · ${count.segments} segment${count.segments > 1 ? "s" : ""} (${count.encoding})` : "";
}

export function renderBreaker(state, seconds) {
  $("#sms-send").dataset.breaker = state;
  $("#sms-breaker").hidden = state === "closed";
  $("#sms-breaker").textContent = state === "open"
    ? `The SMS provider is down: Send SMS is paused for ${seconds} s so as not to pile up messages.`
    : state === "half_open" ? "The SMS provider was down: the next message tests whether it is back." : "";
}
