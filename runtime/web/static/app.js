// vplc web HMI: session, live stream (server-sent events), router, banners.
// Every text from the server goes into the page with textContent, never as HTML.
import { opsPages } from "./ops.js";
import { engPages } from "./eng.js";

export const store = {
  meta: null, session: null, v: [], q: [], f: [], alarms: [], params: [], phases: [],
  status: { state: "STARTING", reason: "" }, t: 0, wall: 0, lastMessage: 0,
};
const listeners = new Set();
export function onUpdate(fn) { listeners.add(fn); return () => listeners.delete(fn); }

// ---------------------------------------------------------------- helpers
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v;  // CSSOM: allowed by the page's CSP
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else if (v !== false && v != null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}
export const QUALITY = ["BAD", "UNCERTAIN", "GOOD"];
// ``type``: the IEC type; a REAL always shows its decimals (JSON sends 37.0 as 37).
export function fmt(value, unit = "", type = "") {
  let text;
  const real = type === "REAL" || type === "LREAL" || (!type && !Number.isInteger(value));
  if (value === null || value === undefined) text = "—";
  else if (typeof value === "boolean") text = value ? "ON" : "off";
  else if (typeof value === "number") text = Math.abs(value) >= 1e6 ? value.toPrecision(4) : (!real ? String(value) : value.toFixed(Math.abs(value) < 10 ? 3 : 2));
  else text = String(value);
  return unit ? `${text} ${unit}` : text;
}
export function hms(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
}
export function toast(text, refused = false) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = refused ? "toast refused" : "toast";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, refused ? 8000 : 4000);
}

// ---------------------------------------------------------------- the API
export async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": store.session?.csrf ?? "" },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, { credentials: "same-origin", ...init });
  let data = {};
  try { data = await res.json(); } catch { data = { reason: `HTTP ${res.status}` }; }
  if (res.status === 401 && path !== "/api/login") showLogin("Your session ended: log in again.");
  return { ok: res.ok, status: res.status, data };
}
// A write; the answer in words (refusals name why, out-of-range values their limits).
// A write the app may make critical (its gmp.critical rules, in /api/meta) is previewed
// first; when the runtime says it is critical now (or refuses it for want of signatures)
// the signing dialog shows what is signed and sends it again with the signatures.
export async function command(path, body, what) {
  let sign = null, res = null;
  if (mayBeCritical(path, body)) {
    const shown = await api(path, { ...body, preview: true });
    if (!shown.ok) return refused(shown, what);
    if (shown.data.sign.critical) sign = shown.data.sign;
  }
  if (!sign) res = await api(path, body);
  if (res && !res.ok && res.data.signatures_required) {
    const shown = await api(path, { ...body, preview: true });
    if (!shown.ok) return refused(shown, what);
    sign = shown.data.sign;
  }
  if (sign) {
    const sigs = await signWith(sign, what);
    if (sigs === null) { toast(`${what}: not signed, nothing was done`); return { ok: false, data: {}, why: "not signed" }; }
    res = await api(path, { ...body, signatures: sigs });
  }
  if (res.ok) { toast(`${what}: done${sign ? " (signed)" : ""}`); return { ok: true, data: res.data }; }
  return refused(res, what);
}
function refused({ status, data }, what) {
  let why = data.reason || `HTTP ${status}`;
  if (data.limits) why += ` (limits ${fmt(data.limits.min)} … ${fmt(data.limits.max)} ${data.limits.unit || ""})`;
  toast(`${what} refused: ${why}`, true);
  return { ok: false, data, why };
}
const CMD_OF = { "/api/parameter": "set_parameter", "/api/force": "force", "/api/unforce": "unforce", "/api/phase": "phase", "/api/alarm/ack": "ack_alarm" };
function mayBeCritical(path, body) {
  const cmd = CMD_OF[path];
  const target = body.name ?? body.point ?? body.block;
  const command = String(body.command ?? "").trim().toUpperCase();
  return (store.meta?.critical || []).some((r) => r.cmd === cmd
    && (!r.targets.length || r.targets.includes(target))
    && (!r.commands.length || r.commands.includes(command)));
}
// The signing dialog: the content exactly as it will be signed, one row per required signer
// (the first is the logged-in user, who performs it; a second person types their own id and
// password on this screen), meanings fixed in the rule's order. Resolves to the signatures
// or null (cancelled); the passwords leave the page only in that one request.
export function signWith(sign, what) {
  const dlg = document.getElementById("sign");
  const rows = document.getElementById("sign-rows");
  document.getElementById("sign-title").textContent = `Electronic signature: ${what}`;
  document.getElementById("sign-rule").textContent = `${sign.rule.description}: ${sign.rule.signers} signature${sign.rule.signers > 1 ? "s by different people" : ""} (${sign.rule.meanings.join(", ")}). Each signer re-enters their own password.`;
  document.getElementById("sign-content").textContent = JSON.stringify(sign.content, null, 2);
  document.getElementById("sign-hash").textContent = `content hash (sha256): ${sign.content_hash} — valid for ${Math.round(sign.expires_in_s)} s, for this one command`;
  const inputs = sign.rule.meanings.map((meaning, k) => {
    const n = k + 1;
    const user = el("input", { id: `sign-user-${k}`, autocomplete: "off", required: true, maxlength: "64", spellcheck: "false" });
    const password = el("input", { id: `sign-password-${k}`, type: "password", autocomplete: "off", required: true, maxlength: "256" });
    if (k === 0) { user.value = store.session.user; user.readOnly = true; }
    rows.append(el("fieldset", { class: "signer" },
      el("legend", { text: `Signer ${n}: ${meaning}${k === 0 ? " (you, the sender)" : ""}` }),
      el("label", { for: user.id, text: `Signer ${n} user id` }), user,
      el("label", { for: password.id, text: `Signer ${n} password` }), password,
      el("span", { class: "meaning", text: `Meaning: ${meaning}` })));
    return { user, password, meaning };
  });
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      const ok = dlg.returnValue === "ok";
      const sigs = inputs.map(({ user, password, meaning }) => ({ user: user.value.trim(), password: password.value, meaning, content_hash: sign.content_hash }));
      rows.replaceChildren();  // the passwords do not stay in the page
      resolve(ok ? sigs : null);
    }, { once: true });
    dlg.returnValue = "";
    dlg.showModal();
    inputs[0].password.focus();
  });
}
// Confirmation with a reason; resolves to the reason or null (cancelled).
export function confirmWith(text, reasonRequired = false) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  const reason = document.getElementById("confirm-reason");
  reason.value = "";
  reason.required = reasonRequired;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok" ? reason.value : null), { once: true });
    dlg.returnValue = "";  // Escape keeps the last value: it must not confirm again
    dlg.showModal();
    reason.focus();
  });
}

// Cancel is not a submit button, so Enter in a field submits (confirms), as expected.
for (const id of ["confirm", "sign"]) {
  document.getElementById(`${id}-cancel`).addEventListener("click", () => document.getElementById(id).close("cancel"));
}

// ---------------------------------------------------------------- live stream
let source = null;
function applyMessage(msg) {
  if (msg.type === "full") {
    Object.assign(store, { v: msg.v, q: msg.q, f: msg.f, alarms: msg.alarms, params: msg.params, phases: msg.phases });
  } else {
    for (const [k, v] of Object.entries(msg.v || {})) store.v[k] = v;
    for (const [k, v] of Object.entries(msg.q || {})) store.q[k] = v;
    for (const [k, v] of Object.entries(msg.f || {})) store.f[k] = v;
    for (const [k, v] of Object.entries(msg.alarms || {})) store.alarms[k] = v;
    for (const [k, v] of Object.entries(msg.params || {})) store.params[k] = v;
    for (const [k, v] of Object.entries(msg.phases || {})) store.phases[k] = v;
  }
  if (msg.status) store.status = msg.status;
  if (msg.t !== undefined) store.t = msg.t;
  store.lastMessage = Date.now();
  banners();
  for (const fn of listeners) fn(msg);
}
function connect() {
  if (source) source.close();
  source = new EventSource("/api/stream");
  source.onmessage = (e) => applyMessage(JSON.parse(e.data));
  source.addEventListener("ping", (e) => { store.status = JSON.parse(e.data); store.lastMessage = Date.now(); banners(); });
  source.addEventListener("logout", () => { source.close(); showLogin("You were logged out after a time without activity."); });
  source.onerror = () => banners();
}
// No message (nor ping) for 3 s: the HMI server itself is unreachable.
setInterval(() => banners(), 1000);
// Banners are refreshed on every message: only a text that differs is written (no DOM churn).
function put(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
function banners() {
  const conn = document.getElementById("banner-conn");
  const lost = store.session && Date.now() - store.lastMessage > 3000;
  conn.hidden = !lost;
  put(conn, lost ? "No connection to the HMI server: values are not live (retrying)." : "");
  const st = store.status;
  const rt = document.getElementById("banner-runtime");
  const bad = st.state !== "RUN";
  rt.hidden = !bad || !store.session;
  put(rt, bad ? `Runtime ${st.state}${st.reason ? ": " + st.reason : ""}` : "");
  const badge = document.getElementById("rt-state");
  put(badge, lost ? "UNREACHABLE" : st.state);
  const cls = `state ${lost ? "UNREACHABLE" : st.state}`;
  if (badge.className !== cls) badge.className = cls;
  put(document.getElementById("app-time"), store.t ? `app time ${hms(store.t)}` : "");
  const forced = store.meta ? store.meta.points.filter((p, i) => store.f[i]).map((p) => p.name) : [];
  const fb = document.getElementById("banner-forced");
  fb.hidden = forced.length === 0;
  put(fb, forced.length ? `FORCED: ${forced.join(", ")} — the program does not control ${forced.length === 1 ? "this point" : "these points"}` : "");
  const active = store.alarms.filter((a) => a[0] || a[1]).length;
  put(document.getElementById("alarm-count"), active ? String(active) : "");
}

// ---------------------------------------------------------------- session and router
const pages = { ...opsPages, ...engPages };
let teardown = null;
function route() {
  if (!store.session || !store.meta) return;
  const name = (location.hash || "#overview").slice(1);
  const page = pages[name] || pages.overview;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#${name}`);
  if (teardown) teardown();
  const main = document.getElementById("page");
  main.replaceChildren();
  teardown = page(main) || null;
  main.dataset.page = name;
}
function showLogin(message = "") {
  store.session = null;
  if (source) source.close();
  document.getElementById("login").hidden = false;
  document.getElementById("nav").hidden = true;
  document.getElementById("page").replaceChildren();
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("login-error").textContent = message;
  banners();
}
async function startSession(session) {
  store.session = session;
  const meta = await api("/api/meta");
  if (!meta.ok) return showLogin(meta.data.reason);
  store.meta = meta.data;
  document.getElementById("app-name").textContent = `${meta.data.app} ${meta.data.version}`;
  document.getElementById("who").textContent = `${session.user} (${session.role}${session.role === "viewer" ? ": read only" : ""})`;
  document.getElementById("login").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  store.lastMessage = Date.now();
  connect();
  route();
}
document.getElementById("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = document.getElementById("login-user").value;
  const password = document.getElementById("login-password").value;
  const { ok, data } = await api("/api/login", { user, password });
  document.getElementById("login-password").value = "";
  if (!ok) { document.getElementById("login-error").textContent = data.reason; return; }
  startSession(data);
});
document.getElementById("logout").addEventListener("click", async () => {
  await api("/api/logout", {});
  showLogin("Logged out.");
});
window.addEventListener("hashchange", route);
(async () => {
  const { ok, data } = await api("/api/session");
  if (ok) startSession(data); else showLogin("");
})();
