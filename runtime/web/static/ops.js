// Operator pages: Overview, Alarms, Batch, Parameters.
import { store, onUpdate, el, fmt, hms, QUALITY, api, command, confirmWith } from "./app.js";

const idx = () => Object.fromEntries(store.meta.points.map((p, i) => [p.name, i]));
const paramIdx = () => Object.fromEntries(store.meta.params.map((p, i) => [p.name, i]));

// A point's value cell: live value + unit, BAD/UNCERTAIN and FORCED marked in words too.
function pointCell(i) {
  const p = store.meta.points[i];
  const val = el("span", { class: "val", "data-pt": String(i) });
  const tags = el("span", { class: "tags" });
  // Only what differs is written: a page of thousands of points then costs the browser one
  // text node per changed value, not a rebuilt cell (and no style work while quality holds).
  let text = null, marks = null;
  const paint = () => {
    const t = fmt(store.v[i], p.unit, p.type);
    if (t !== text) val.textContent = text = t;
    const q = QUALITY[store.q[i]] ?? "BAD";
    const m = `${q}${store.f[i] ? " isforced" : ""}`;
    if (m === marks) return;
    marks = m;
    val.className = `val ${q === "GOOD" ? "" : q}${store.f[i] ? " isforced" : ""}`;
    tags.replaceChildren();
    if (q !== "GOOD") tags.append(" ", el("span", { class: `tag ${q === "BAD" ? "bad" : "warn"}`, text: q }));
    if (store.f[i]) tags.append(" ", el("span", { class: "tag forced", text: "FORCED" }));
  };
  paint();
  return { node: el("span", {}, val, tags), paint };
}

function overview(main) {
  const m = store.meta, pi = idx(), pa = paramIdx();
  const painters = [];  // loop setpoints: few, painted on every message
  const byPoint = new Map();  // point index → its cells' painters: only changes are painted
  main.append(el("h2", { text: "Overview" }));
  const loops = el("div", { class: "grid", id: "loops" });
  const loopVals = {};
  for (const loop of m.loops) {
    const dl = el("dl", { class: "kv" });
    const row = (label, node) => dl.append(el("dt", { text: label }), el("dd", {}, node));
    if (loop.pv in pi) { const c = pointCell(pi[loop.pv]); addPainter(byPoint, pi[loop.pv], c.paint); row(`PV ${loop.pv}`, c.node); }
    const sp = el("span", { class: "val" });
    const out = el("span", { class: "val" });
    const mode = el("span", { class: "val" });
    row(loop.sp ? `SP ${loop.sp}` : "SP (working)", sp);
    row("Output", out);
    row("Mode", mode);
    painters.push(() => { if (loop.sp in pa) sp.textContent = fmt(store.params[pa[loop.sp]], loop.unit, m.params[pa[loop.sp]].type); });
    loopVals[loop.path] = { sp, out, mode, loop };
    loops.append(el("section", { class: "card", "aria-label": `loop ${loop.path}` }, el("h3", { text: loop.path }), dl));
  }
  if (m.loops.length) main.append(el("h3", { text: "Control loops" }), loops);
  const groups = Object.keys(m.overview).length ? m.overview : { "Process values": m.points.map((p) => p.name) };
  const grid = el("div", { class: "grid" });
  for (const [title, names] of Object.entries(groups)) {
    const dl = el("dl", { class: "kv" });
    for (const n of names) {
      const c = pointCell(pi[n]);
      addPainter(byPoint, pi[n], c.paint);
      dl.append(el("dt", { text: n, title: m.points[pi[n]].description }), el("dd", {}, c.node));
    }
    grid.append(el("section", { class: "card" }, el("h3", { text: title }), dl));
  }
  main.append(el("h3", { text: "Process" }), grid);
  painters.forEach((p) => p());
  for (const list of byPoint.values()) list.forEach((p) => p());
  // Block internals (OUT, MODE) are not in the live stream: asked every second.
  const poll = async () => {
    const { ok, data } = await api("/api/loops");
    if (!ok) return;
    for (const [path, vals] of Object.entries(data.values || {})) {
      const lv = loopVals[path];
      if (!lv || !vals) continue;
      lv.out.textContent = fmt(vals.OUT) + (vals.LIMITED ? " (limited)" : "");
      lv.mode.textContent = vals.MODE;
      if (!lv.loop.sp) lv.sp.textContent = fmt(vals.SP_W, lv.loop.unit);
    }
  };
  poll();
  const timer = setInterval(poll, 1000);
  const off = onUpdate((msg) => {
    painters.forEach((p) => p());
    if (msg.type === "full") { for (const list of byPoint.values()) list.forEach((p) => p()); return; }
    const changed = new Set([...Object.keys(msg.v || {}), ...Object.keys(msg.q || {}), ...Object.keys(msg.f || {})]);
    for (const k of changed) (byPoint.get(Number(k)) || []).forEach((p) => p());
  });
  return () => { off(); clearInterval(timer); };
}

function addPainter(map, i, paint) {
  if (!map.has(i)) map.set(i, []);
  map.get(i).push(paint);
}

function alarms(main) {
  main.append(el("h2", { text: "Alarms" }));
  const body = el("tbody");
  const showAll = el("input", { type: "checkbox", id: "alarm-all" });
  main.append(el("div", { class: "toolbar" }, el("label", { for: "alarm-all" }, showAll, " show inactive alarms too")));
  main.append(el("table", {}, el("thead", {}, el("tr", {},
    ...["Alarm", "State", "Priority", "Since", "Text", "Acknowledge"].map((h) => el("th", { text: h })))), body));
  const since = {};
  const paint = () => {
    body.replaceChildren();
    store.meta.alarms.forEach((path, j) => {
      const a = store.alarms[j] || [];
      const [active, unacked, severity, hh, h, l, ll, bad, text] = a;
      if (active && since[j] === undefined) since[j] = store.t;
      if (!active) delete since[j];
      if (!active && !unacked && !showAll.checked) return;
      const kinds = [hh && "HH", h && "H", l && "L", ll && "LL", bad && "BAD"].filter(Boolean).join(" ");
      const state = `${active ? "ACTIVE" : "cleared"}${unacked ? ", unacknowledged" : ""}${kinds ? " (" + kinds + ")" : ""}`;
      const comment = el("input", { "aria-label": `comment for ${path}`, placeholder: "comment", maxlength: "1000" });
      const ack = el("button", { type: "button", text: "Acknowledge", "aria-label": `acknowledge ${path}`, disabled: !unacked });
      ack.addEventListener("click", () => command("/api/alarm/ack", { block: path, comment: comment.value }, `Acknowledge ${path}`));
      body.append(el("tr", { "data-alarm": path, class: active ? "BAD" : "" },
        el("td", { text: path }), el("td", { text: state }), el("td", { class: "num", text: String(severity ?? "") }),
        el("td", { text: since[j] !== undefined ? `app ${hms(since[j])}` : "" }), el("td", { text: text || "" }),
        el("td", {}, comment, " ", ack)));
    });
    if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No active or unacknowledged alarms." })));
  };
  showAll.addEventListener("change", paint);
  paint();
  // Repaint only when alarms change: a comment being typed must not be wiped out.
  return onUpdate((msg) => { if (msg.type === "full" || msg.alarms) paint(); });
}

function batch(main) {
  main.append(el("h2", { text: "Batch" }));
  const grid = el("div", { class: "grid" });
  main.append(grid);
  const paints = [];
  store.meta.phases.forEach((path, k) => {
    const state = el("strong", { class: "val", "data-phase": path });
    const step = el("span", { class: "val" });
    const inState = el("span", { class: "val" });
    const inStep = el("span", { class: "val" });
    const buttons = el("div", { class: "toolbar" });
    for (const c of store.meta.phase_commands) {
      const b = el("button", { type: "button", text: c[0] + c.slice(1).toLowerCase(), "aria-label": `${c} ${path}` });
      b.addEventListener("click", async () => {
        const reason = await confirmWith(`${c} the phase ${path}? It is in ${store.phases[k][0]}.`);
        if (reason === null) return;
        await command("/api/phase", { block: path, command: c, reason }, `${c} ${path}`);
      });
      buttons.append(b);
    }
    grid.append(el("section", { class: "card" }, el("h3", { text: path }),
      el("dl", { class: "kv" }, el("dt", { text: "State" }), el("dd", {}, state), el("dt", { text: "Step" }), el("dd", {}, step),
        el("dt", { text: "In state" }), el("dd", {}, inState), el("dt", { text: "In step" }), el("dd", {}, inStep)), buttons));
    paints.push(() => {
      const [s, st, sinceState, sinceStep] = store.phases[k] || [];
      state.textContent = s ?? "—";
      step.textContent = st ?? "—";
      inState.textContent = sinceState ? hms(store.t - sinceState) : "since start-up";
      inStep.textContent = sinceStep ? hms(store.t - sinceStep) : "since start-up";
    });
  });
  if (!store.meta.phases.length) main.append(el("p", { class: "muted", text: "This app has no PHASE block." }));
  paints.forEach((p) => p());
  return onUpdate(() => paints.forEach((p) => p()));
}

function parameters(main) {
  main.append(el("h2", { text: "Parameters" }));
  const body = el("tbody");
  main.append(el("table", {}, el("thead", {}, el("tr", {},
    ...["Parameter", "Value", "Limits", "New value", "Reason", ""].map((h) => el("th", { text: h })))), body));
  const cells = [];
  store.meta.params.forEach((p, k) => {
    const cur = el("span", { class: "val", "data-param": p.name });
    const isBool = p.type === "BOOL";
    const input = isBool
      ? el("select", { "aria-label": `new value of ${p.name}` }, el("option", { value: "true", text: "true" }), el("option", { value: "false", text: "false" }))
      : el("input", { "aria-label": `new value of ${p.name}`, inputmode: "decimal", size: "8" });
    const reason = el("input", { "aria-label": `reason for ${p.name}`, placeholder: "reason", maxlength: "1000" });
    const msg = el("div", { class: "error", role: "alert" });
    const write = el("button", { type: "button", text: "Write", "aria-label": `write ${p.name}` });
    write.addEventListener("click", async () => {
      let value = input.value.trim();
      if (isBool) value = value === "true";
      else if (p.type === "STRING") value = String(value);
      else { value = Number(value); if (value === "" || !isFinite(value)) { msg.textContent = `enter a number for ${p.name}`; return; } }
      if (["INT", "DINT", "SINT", "LINT", "UINT", "UDINT", "USINT", "ULINT"].includes(p.type) && !Number.isInteger(value)) { msg.textContent = "enter a whole number"; return; }
      const r = await command("/api/parameter", { name: p.name, value, reason: reason.value }, `Write ${p.name}`);
      msg.textContent = r.ok ? "" : `refused: ${r.why}`;
      if (r.ok) { input.value = ""; reason.value = ""; }
    });
    const limits = p.min !== null || p.max !== null ? `${fmt(p.min)} … ${fmt(p.max)}` : "";
    body.append(el("tr", {}, el("td", { text: p.name, title: p.description || "" }), el("td", {}, cur),
      el("td", { text: `${limits} ${p.unit || ""}` }), el("td", {}, input), el("td", {}, reason), el("td", {}, write, msg)));
    cells.push(() => { cur.textContent = fmt(store.params[k], p.unit, p.type); });
  });
  cells.forEach((c) => c());
  return onUpdate((msg) => { if (msg.type === "full" || msg.params) cells.forEach((c) => c()); });
}

export const opsPages = { overview, alarms, batch, parameters };
export { pointCell };
