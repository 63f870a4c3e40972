// Trends, Engineering and Audit pages. The chart is drawn on a canvas here (no library).
import { store, onUpdate, el, fmt, hms, api, command, confirmWith } from "./app.js";
import { pointCell } from "./ops.js";

const COLORS = ["#0b57d0", "#b3261e", "#1d7a38", "#a15c00", "#7b1fa2", "#00838f"];

// ---------------------------------------------------------------- Trends
function drawChart(canvas, data, view) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const pad = { l: 60, r: 10, t: 10, b: 24 };
  const [t0, t1] = view;
  let lo = Infinity, hi = -Infinity;
  for (const s of Object.values(data.series)) for (let k = 0; k < s.length; k++) {
    const t = data.t[k];
    if (t < t0 || t > t1 || s[k] === null) continue;
    lo = Math.min(lo, s[k]); hi = Math.max(hi, s[k]);
  }
  if (!isFinite(lo)) { g.fillText("no data in this time range", pad.l, h / 2); return; }
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (w - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);
  g.strokeStyle = "#d0d5db"; g.fillStyle = "#5a6470"; g.font = "12px system-ui";
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    g.beginPath(); g.moveTo(pad.l, y(v)); g.lineTo(w - pad.r, y(v)); g.stroke();
    g.fillText(fmt(v), 4, y(v) + 4);
  }
  for (let i = 0; i <= 4; i++) { const t = t0 + ((t1 - t0) * i) / 4; g.fillText(hms(t), x(t) - 20, h - 6); }
  Object.values(data.series).forEach((s, n) => {
    g.strokeStyle = COLORS[n % COLORS.length]; g.lineWidth = 1.5; g.beginPath();
    let pen = false;
    for (let k = 0; k < s.length; k++) {
      if (s[k] === null) { pen = false; continue; }
      const px = x(data.t[k]), py = y(s[k]);
      if (pen) g.lineTo(px, py); else g.moveTo(px, py);
      pen = true;
    }
    g.stroke();
  });
}

function trends(main) {
  const m = store.meta;
  main.append(el("h2", { text: "Trends" }));
  const select = el("select", { id: "trend-points", multiple: true, size: "6", "aria-label": "points to plot" });
  m.points.forEach((p) => { if (p.type !== "STRING") select.append(el("option", { value: p.name, text: `${p.name} (${p.unit || "-"}) ${p.description}` })); });
  for (const o of select.options) if (o.index < 2) o.selected = true;
  const span = el("select", { "aria-label": "time span" }, ...[["60", "1 min"], ["600", "10 min"], ["3600", "1 h"], ["14400", "4 h (trace files)"]].map(([v, t]) => el("option", { value: v, text: t })));
  span.value = "600";
  const live = el("input", { type: "checkbox", checked: true, id: "trend-live" });
  const zoomIn = el("button", { type: "button", text: "Zoom in" });
  const zoomOut = el("button", { type: "button", text: "Zoom out" });
  const left = el("button", { type: "button", text: "◀ Pan", "aria-label": "pan to earlier" });
  const right = el("button", { type: "button", text: "Pan ▶", "aria-label": "pan to later" });
  const legend = el("div", { class: "toolbar" });
  const canvas = el("canvas", { role: "img", "aria-label": "trend chart" });
  main.append(el("div", { class: "toolbar" }, el("label", {}, "Points", select), el("label", {}, "Span", span),
    el("label", { for: "trend-live" }, live, " follow live"), zoomIn, zoomOut, left, right), legend, canvas,
    el("p", { class: "muted", text: `Ring buffer: ${hms(m.trend.span_s)} at ${m.trend.span_s / m.trend.size} s; older data from trace files when configured. Drag to pan, wheel to zoom.` }));
  let view = null, data = { t: [], series: {} };
  const load = async () => {
    const names = [...select.selectedOptions].map((o) => o.value);
    if (!names.length) return;
    const s = Number(span.value);
    if (live.checked || !view) view = [store.t - s, store.t];
    const r = await api(`/api/trend?points=${encodeURIComponent(names.join(","))}&from=${view[0] - (view[1] - view[0])}&to=${view[1] + (view[1] - view[0])}`);
    if (!r.ok) return;
    data = r.data;
    if (r.data.trace && r.data.trace.t.length) {  // older rows from trace files first
      data = { t: [...r.data.trace.t, ...r.data.t], series: Object.fromEntries(names.map((n) => [n, [...(r.data.trace.series[n] || []), ...r.data.series[n]]])) };
    }
    legend.replaceChildren(...names.map((n, i) => el("span", { style: `color:${COLORS[i % COLORS.length]}`, text: `■ ${n}` })));
    drawChart(canvas, data, view);
  };
  const move = (f) => { live.checked = false; const d = view[1] - view[0]; view = [view[0] + d * f, view[1] + d * f]; load(); };
  const zoom = (f) => { live.checked = false; const c = (view[0] + view[1]) / 2, d = (view[1] - view[0]) * f / 2; view = [c - d, c + d]; load(); };
  zoomIn.onclick = () => zoom(0.5); zoomOut.onclick = () => zoom(2);
  left.onclick = () => move(-0.5); right.onclick = () => move(0.5);
  canvas.addEventListener("wheel", (e) => { e.preventDefault(); zoom(e.deltaY > 0 ? 1.25 : 0.8); });
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => { drag = e.clientX; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointerup", (e) => {
    if (drag === null) return;
    const dx = e.clientX - drag; drag = null;
    if (Math.abs(dx) > 3) move(-dx / canvas.clientWidth);
  });
  select.onchange = load; span.onchange = () => { live.checked = true; load(); };
  load();
  const timer = setInterval(() => { if (live.checked) load(); }, 2000);
  return () => clearInterval(timer);
}

// ---------------------------------------------------------------- Engineering
function engineering(main) {
  const m = store.meta;
  main.append(el("h2", { text: "Engineering" }));
  // Forcing
  const force = el("section", { class: "card" }, el("h3", { text: "Forcing" }));
  const point = el("select", { id: "force-point", "aria-label": "point to force" }, ...m.points.map((p) => el("option", { value: p.name, text: p.name })));
  const value = el("input", { id: "force-value", "aria-label": "forced value", size: "8" });
  const fbtn = el("button", { type: "button", text: "Force", id: "force-btn" });
  const ubtn = el("button", { type: "button", text: "Unforce", id: "unforce-btn" });
  const current = el("span", {});
  const parse = (p, text) => (p.type === "BOOL" ? ["1", "true", "on"].includes(text.toLowerCase()) : p.type === "STRING" ? text : Number(text));
  fbtn.onclick = async () => {
    const p = m.points.find((x) => x.name === point.value);
    const reason = await confirmWith(`Force ${p.name} to ${value.value}? The program will no longer control it.`);
    if (reason !== null) await command("/api/force", { point: p.name, value: parse(p, value.value), reason }, `Force ${p.name}`);
  };
  ubtn.onclick = async () => {
    const reason = await confirmWith(`Unforce ${point.value}?`);
    if (reason !== null) await command("/api/unforce", { point: point.value, reason }, `Unforce ${point.value}`);
  };
  const showCurrent = () => { const i = m.points.findIndex((x) => x.name === point.value); const c = pointCell(i); current.replaceChildren(c.node); return c.paint; };
  let paintCurrent = showCurrent();
  point.onchange = () => { paintCurrent = showCurrent(); };
  force.append(el("div", { class: "toolbar" }, el("label", {}, "Point", point), el("label", {}, "Value", value), fbtn, ubtn, el("span", {}, "now: ", current)));
  // Tasks
  const tasks = el("section", { class: "card" }, el("h3", { text: "Tasks" }));
  const tbody = el("tbody");
  const hist = el("div", { class: "grid" });
  const change = el("div", {});
  tasks.append(el("table", {}, el("thead", {}, el("tr", {}, ...["Task", "Period ms", "Cycles", "Overruns", "Exec p50/p99/max µs", "Latency p50/p99/max µs"].map((h) => el("th", { text: h })))), tbody), hist);
  const onl = el("section", { class: "card" }, el("h3", { text: "Online change" }), change);
  // Instance tree
  const treeBox = el("section", { class: "card" }, el("h3", { text: "Instance tree" }));
  const treeList = el("ul", { class: "tree" });
  const watch = el("table", {}, el("tbody"));
  treeBox.append(el("p", { class: "muted", text: "Select instances to watch their variables (read between two scan cycles, every second)." }), treeList, watch);
  const watched = new Set();
  api("/api/tree").then(({ ok, data }) => {
    if (!ok) return;
    for (const row of data.tree) {
      const box = el("input", { type: "checkbox", id: `w-${row.path}`, "aria-label": `watch ${row.path}` });
      box.onchange = () => { if (box.checked) watched.add(row.path); else watched.delete(row.path); pollWatch(); };
      treeList.append(el("li", {}, box, " ", el("label", { for: `w-${row.path}`, text: `${row.path} : ${row.type}` })));
    }
  });
  const pollWatch = async () => {
    if (!watched.size) { watch.replaceChildren(); return; }
    const { ok, data } = await api(`/api/watch?paths=${encodeURIComponent([...watched].join(","))}`);
    if (!ok) return;
    const rows = [];
    for (const [path, vars] of Object.entries(data.values)) {
      rows.push(el("tr", {}, el("th", { colspan: "2", text: path })));
      for (const [k, v] of Object.entries(vars || {})) rows.push(el("tr", {}, el("td", { text: k }), el("td", { class: "num", text: fmt(v) })));
    }
    watch.replaceChildren(el("tbody", {}, ...rows));
  };
  const pollTasks = async () => {
    const { ok, data } = await api("/api/tasks");
    if (!ok) return;
    tbody.replaceChildren(...Object.entries(data.tasks).map(([name, t]) => el("tr", {}, el("td", { text: name }), el("td", { class: "num", text: fmt(t.period_ms) }),
      el("td", { class: "num", text: String(t.cycles) }), el("td", { class: "num", text: String(t.overruns) }),
      el("td", { class: "num", text: `${fmt(t.exec_us.p50)} / ${fmt(t.exec_us.p99)} / ${fmt(t.exec_us.max)}` }),
      el("td", { class: "num", text: `${fmt(t.wake_latency_us.p50)} / ${fmt(t.wake_latency_us.p99)} / ${fmt(t.wake_latency_us.max)}` }))));
    hist.replaceChildren(...Object.entries(data.histograms).map(([name, h]) => {
      const max = Math.max(1, ...h.latency.map((b) => b[1]));
      return el("div", {}, el("strong", { text: `${name}: wake latency histogram` }),
        el("div", { class: "bars", role: "img", "aria-label": `${name} latency histogram` }, ...h.latency.map(([us, n]) => el("div", { style: `height:${Math.max(2, (100 * n) / max)}%`, title: `≤ ${us} µs: ${n}` }))),
        el("div", { class: "muted", text: h.latency.length ? `bins ≤ ${h.latency.map((b) => b[0]).join(", ")} µs` : "no cycles yet" }));
    }));
    const c = data.online_change;
    change.replaceChildren(el("p", { text: `Running version ${data.version ?? "?"}` }),
      c ? el("p", { text: `Last online change: ${c.old_version} → ${c.new_version}: ${c.status}${c.reason ? " (" + c.reason + ")" : ""}` }) : el("p", { class: "muted", text: "No online change recorded in the audit trail (send SIGHUP to the runtime to load the app folder again)." }),
      c && c.plan ? el("pre", { text: JSON.stringify(c.plan, null, 1).slice(0, 4000) }) : "");
  };
  main.append(force, tasks, onl, treeBox);
  pollTasks(); pollWatch();
  const timer = setInterval(() => { pollTasks(); pollWatch(); }, 1000);
  const off = onUpdate(() => paintCurrent());
  return () => { clearInterval(timer); off(); };
}

// ---------------------------------------------------------------- Audit
function audit(main) {
  main.append(el("h2", { text: "Audit trail" }));
  const verdict = el("p", { id: "audit-verdict", role: "status" });
  const f = Object.fromEntries(["user", "cmd", "status", "text"].map((k) => [k, el("input", { id: `audit-${k}`, "aria-label": `filter ${k}`, size: "10" })]));
  const go = el("button", { type: "button", text: "Filter" });
  const body = el("tbody");
  main.append(verdict, el("div", { class: "toolbar" }, ...Object.entries(f).map(([k, i]) => el("label", {}, k, i)), go),
    el("table", {}, el("thead", {}, el("tr", {}, ...["#", "Time", "Event", "User", "Role", "Command", "Target", "Status", "Why / comment", "Old → new", "Reason"].map((h) => el("th", { text: h })))), body));
  const load = async () => {
    const qs = new URLSearchParams(Object.fromEntries(Object.entries(f).map(([k, i]) => [k, i.value])));
    const { ok, data } = await api(`/api/audit?${qs}`);
    if (!ok) return;
    body.replaceChildren(...data.records.map((r) => el("tr", {}, ...[r.seq, r.ts || r.time, r.event, r.user, r.role, r.cmd, r.target, r.status, r.why, r.old !== undefined || r.new !== undefined ? `${fmt(r.old)} → ${fmt(r.new)}` : "", r.reason]
      .map((v) => el("td", { text: v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v) })))));
    if (!data.records.length) body.append(el("tr", {}, el("td", { colspan: "11", class: "muted", text: data.note || "No matching records." })));
    const v = await api("/api/audit/verify");
    verdict.textContent = `Verifier: ${v.data.summary}`;
    verdict.className = v.data.ok ? "ok" : "error";
  };
  go.onclick = load;
  for (const i of Object.values(f)) i.addEventListener("keydown", (e) => { if (e.key === "Enter") load(); });
  load();
  return null;
}

export const engPages = { trends, engineering, audit };
