// rushopt dashboard: polls the JSON API under /api/ and draws plain SVG.
// Incremental: the page keeps the rows it has and asks only for the rows after them
// (/history?after=N) and the failures after the newest it has (/failures?after=S).
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 1000;
  const LIST_EVERY = 5; // polls between two reads of the network list
  const MAX_CIRCLES = 2000; // more points are drawn as one path
  const MAX_LINES = 1000; // parallel coordinates: the newest rows

  const state = {
    id: null, summary: null, rows: [], failures: new Map(), failureSeq: 0,
    gone: false, metric: null, direction: null, tick: 0, busy: false, drawn: -1,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const node = tag.startsWith("svg:")
      ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(6));
    }
    return String(v);
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    if (seconds < 60) return Math.round(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function counts(obj) {
    const shown = Object.entries(obj || {}).filter(([, n]) => n).map(([k, n]) => n + " " + k);
    return shown.join(", ") || "none";
  }

  async function getJSON(url) {
    let response;
    try {
      response = await fetch(url, { cache: "no-store" });
    } catch (err) {
      return { ok: false, status: 0, body: { message: "the dashboard server does not answer" } };
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = { message: response.statusText }; }
    return { ok: response.ok, status: response.status, body: body };
  }

  function banner(message) {
    const b = $("banner");
    b.hidden = !message;
    b.textContent = message || "";
  }

  const api = (id) => "/api/networks/" + encodeURIComponent(id);

  // ------------------------------------------------------------ network list
  async function pollNetworks() {
    const r = await getJSON("/api/networks");
    if (!r.ok) { banner(r.body && r.body.message); return false; }
    banner(null);
    $("server").textContent = "Redis " + r.body.server;
    const tbody = $("networks").tBodies[0];
    tbody.replaceChildren();
    for (const net of r.body.networks) {
      const tr = el("tr", { "data-network": net.network_id });
      if (net.network_id === state.id) tr.className = "selected";
      tr.append(el("td", {}, net.network_id), el("td", {}, counts(net.workers)),
        el("td", {}, counts(net.tasks)), el("td", {}, net.live ? "now" : ago(net.last_activity_s)));
      tr.addEventListener("click", () => { location.hash = "net=" + encodeURIComponent(net.network_id); });
      tbody.append(tr);
    }
    $("no-networks").hidden = r.body.networks.length > 0;
    if (!state.id && !location.hash && r.body.networks.length) {
      const live = r.body.networks.find((n) => n.live) || r.body.networks[0];
      location.hash = "net=" + encodeURIComponent(live.network_id);
    }
    return true;
  }

  // ------------------------------------------------------------ one network
  function select(id) {
    state.id = id; state.summary = null; state.rows = []; state.failures = new Map();
    state.failureSeq = 0; state.gone = false; state.metric = null; state.direction = null;
    state.drawn = -1;
    $("choose").hidden = id !== null;
    $("network").hidden = id === null;
    $("network-title").textContent = id === null ? "" : "Network " + id;
    $("gone").hidden = true;
    $("failures").replaceChildren();
    for (const tr of $("networks").tBodies[0].rows) {
      tr.className = tr.dataset.network === id ? "selected" : "";
    }
    if (id !== null) pollNetwork();
  }

  function fromHash() {
    const m = /^#net=(.*)$/.exec(location.hash);
    const id = m ? decodeURIComponent(m[1]) : null;
    if (id !== state.id) select(id);
  }

  async function pollNetwork() {
    const id = state.id;
    if (id === null || state.gone) return;
    const r = await getJSON(api(id));
    if (id !== state.id) return;
    if (!r.ok) {
      if (r.status === 404) {
        state.gone = true;
        $("gone").hidden = false;
        $("gone").textContent = r.body.message || "this network is gone";
      } else {
        banner(r.body && r.body.message);
      }
      return;
    }
    banner(null);
    const s = r.body;
    state.summary = s;
    if (s.history.n < state.rows.length) { state.rows = []; state.drawn = -1; }
    while (s.history.n > state.rows.length) {  // one page of rows per request
      const h = await getJSON(api(id) + "/history?after=" + state.rows.length);
      if (id !== state.id || !h.ok || !h.body.rows.length) return;
      for (const row of h.body.rows) if (row.i === state.rows.length) state.rows.push(row);
    }
    const kept = new Set(s.failures.keys);
    if (s.failures.seq > state.failureSeq) {
      const f = await getJSON(api(id) + "/failures?after=" + state.failureSeq);
      if (id !== state.id || !f.ok) return;
      for (const fail of f.body.failures) {
        state.failures.set(fail.key, fail);
        state.failureSeq = Math.max(state.failureSeq, fail.seq);
      }
    }
    for (const key of [...state.failures.keys()]) if (!kept.has(key)) state.failures.delete(key);
    render();
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  // ------------------------------------------------------------ rendering
  function render() {
    const s = state.summary;
    renderMeta(s);
    for (const k of ["queued", "running", "finished", "failed"]) $("count-" + k).textContent = s.tasks[k];
    const budget = s.metadata.n_evals;
    const done = s.tasks.finished + s.tasks.failed;
    $("progress").hidden = typeof budget !== "number";
    if (typeof budget === "number") {
      $("progress").firstElementChild.style.width = Math.min(100, 100 * done / budget) + "%";
      $("progress-text").textContent = done + " of " + budget + " evaluations";
    } else {
      $("progress-text").textContent = s.n_tasks + " tasks in all";
    }
    renderWorkers(s.workers);
    renderControls(s);
    if (state.drawn !== state.rows.length) {
      renderHistory();
      renderParallel();
      state.drawn = state.rows.length;
    }
    renderBest();
    renderFailures(s);
  }

  function renderMeta(s) {
    const dl = $("meta");
    dl.replaceChildren();
    const m = s.metadata;
    const add = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
    if (m.optimizer) add("optimizer", m.optimizer);
    if (s.objective.metric) {
      add("metric", s.objective.metric + (s.objective.source === "guessed" ? " (guessed: no tune metadata)" : ""));
      add("direction", s.objective.direction);
    }
    if (m.n_evals !== undefined) add("budget", m.n_evals + " evaluations");
    if (m.total_budget !== undefined) add("total budget", fmt(m.total_budget));
    for (const [k, v] of Object.entries(m)) {
      if (["optimizer", "metric", "direction", "n_evals", "total_budget"].includes(k)) continue;
      add(k, Array.isArray(v) ? v.join(", ") : typeof v === "object" && v !== null ? JSON.stringify(v) : fmt(v));
    }
    if (!dl.children.length) add("metadata", "none (a plain rush network)");
  }

  function renderWorkers(workers) {
    const tbody = $("workers").tBodies[0];
    tbody.replaceChildren();
    for (const w of workers) {
      const tr = el("tr", { "data-worker": w.worker_id });
      const st = el("td", { class: w.dead ? "dead" : "state-" + w.state }, w.dead ? w.state + " DEAD" : w.state);
      let beat = { none: "no heartbeat", stopped: "-" }[w.heartbeat] || w.heartbeat;
      if (w.heartbeat === "alive") {
        beat = "alive" + (w.heartbeat_age !== null ? ", beat ≈" + fmt(w.heartbeat_age) + " s ago" : "")
          + " (" + fmt(w.heartbeat_ttl) + " s left)";
      }
      const host = (w.hostname || "?") + (w.pid !== null ? ":" + w.pid : "") + (w.remote ? " (remote)" : "");
      tr.append(el("td", { title: w.worker_id }, w.worker_id), st, el("td", {}, host),
        el("td", {}, beat), el("td", { class: "tasks-done" }, w.tasks_done));
      tbody.append(tr);
    }
    if (!workers.length) {
      const tr = el("tr");
      tr.append(el("td", { colspan: 5, class: "muted" }, "no workers"));
      tbody.append(tr);
    }
  }

  function renderControls(s) {
    const select = $("metric");
    const names = s.history.y_names;
    if (state.metric === null || !names.includes(state.metric)) {
      state.metric = s.objective.metric;
      state.direction = s.objective.direction;
      state.drawn = -1;
    }
    if (select.options.length !== names.length || [...select.options].some((o, i) => o.value !== names[i])) {
      select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    }
    if (state.metric !== null) select.value = state.metric;
    $("direction").value = state.direction || "minimize";
  }

  function numeric(v) { return typeof v === "number" && isFinite(v); }

  function ticks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const step0 = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= step0);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }

  function extent(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    return [lo, hi];
  }

  function renderHistory() {
    const svg = $("history");
    svg.replaceChildren();
    const W = 800, H = 300, L = 60, R = 15, T = 15, B = 35;
    const metric = state.metric;
    const pts = metric === null ? [] : state.rows.filter((r) => numeric(r.y[metric]));
    svg.setAttribute("data-points", pts.length);
    if (!pts.length) {
      svg.append(el("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle" },
        metric === null ? "no numeric result yet" : "no finished task with " + metric + " yet"));
      return;
    }
    const [x0, x1] = extent([0, state.rows.length - 1]);
    const [y0, y1] = extent(pts.map((r) => r.y[metric]));
    const sx = (i) => L + (i - x0) / (x1 - x0) * (W - L - R);
    const sy = (v) => H - B - (v - y0) / (y1 - y0) * (H - T - B);
    const axis = el("svg:g", { class: "axis" });
    axis.append(el("svg:line", { x1: L, y1: H - B, x2: W - R, y2: H - B }),
      el("svg:line", { x1: L, y1: T, x2: L, y2: H - B }));
    for (const t of ticks(y0, y1, 5)) {
      axis.append(el("svg:line", { x1: L - 4, y1: sy(t), x2: L, y2: sy(t) }),
        el("svg:text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end" }, fmt(t)));
    }
    for (const t of ticks(Math.max(0, x0), x1, 8).filter(Number.isInteger)) {
      axis.append(el("svg:line", { x1: sx(t), y1: H - B, x2: sx(t), y2: H - B + 4 }),
        el("svg:text", { x: sx(t), y: H - B + 16, "text-anchor": "middle" }, t));
    }
    axis.append(el("svg:text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "finished task"),
      el("svg:text", { x: 12, y: T + (H - T - B) / 2, transform: `rotate(-90 12 ${T + (H - T - B) / 2})`,
        "text-anchor": "middle" }, metric));
    svg.append(axis);
    const maximize = state.direction === "maximize";
    let best = null, d = "";
    for (const r of pts) {
      const v = r.y[metric];
      if (best === null || (maximize ? v > best : v < best)) {
        d += (d ? "H" + sx(r.i).toFixed(1) + "V" : "M" + sx(r.i).toFixed(1) + ",") + sy(v).toFixed(1);
        best = v;
      }
    }
    d += "H" + sx(state.rows.length - 1).toFixed(1);
    if (pts.length <= MAX_CIRCLES) {
      const g = el("svg:g", { class: "points" });
      for (const r of pts) {
        const c = el("svg:circle", { class: "point", cx: sx(r.i).toFixed(1), cy: sy(r.y[metric]).toFixed(1), r: 3 });
        c.append(el("svg:title", {}, "#" + r.i + " " + metric + " = " + fmt(r.y[metric]) + "\n"
          + Object.entries(r.x).map(([k, v]) => k + " = " + fmt(v)).join("\n")));
        g.append(c);
      }
      svg.append(g);
    } else {
      let dots = "";
      for (const r of pts) dots += "M" + sx(r.i).toFixed(1) + "," + sy(r.y[metric]).toFixed(1) + "h0";
      svg.append(el("svg:path", { class: "points", d: dots, stroke: "#2563eb", "stroke-width": 3,
        "stroke-linecap": "round", "stroke-opacity": 0.5 }));
    }
    svg.append(el("svg:path", { class: "best", d: d }));
  }

  function renderParallel() {
    const svg = $("parallel");
    svg.replaceChildren();
    const W = 800, H = 320, T = 30, B = 30, Lp = 50, Rp = 50;
    const metric = state.metric;
    const s = state.summary;
    const dims = s.history.x_names.slice();
    if (metric !== null) dims.push(metric);
    const rows = state.rows.filter((r) => metric === null || numeric(r.y[metric])).slice(-MAX_LINES);
    $("parallel-note").textContent = rows.length < state.rows.length && rows.length === MAX_LINES
      ? "(the newest " + MAX_LINES + " tasks)" : "";
    svg.setAttribute("data-lines", rows.length);
    svg.setAttribute("data-axes", dims.length);
    if (!rows.length || !dims.length) {
      svg.append(el("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no finished task yet"));
      return;
    }
    const value = (r, d) => (d === metric && !(d in r.x) ? r.y[d] : r.x[d]);
    const scales = dims.map((d) => {
      const vals = rows.map((r) => value(r, d)).filter((v) => v !== null && v !== undefined);
      if (vals.length && vals.every(numeric)) {
        const [lo, hi] = extent(vals);
        return { pos: (v) => (numeric(v) ? (v - lo) / (hi - lo) : null), labels: [[1, fmt(hi)], [0, fmt(lo)]] };
      }
      const cats = [...new Set(vals.map(String))].sort();
      const at = (c) => (cats.length === 1 ? 0.5 : cats.indexOf(c) / (cats.length - 1));
      return { pos: (v) => (v === null || v === undefined ? null : at(String(v))),
        labels: cats.slice(0, 12).map((c) => [at(c), c]) };
    });
    const xs = (k) => (dims.length === 1 ? W / 2 : Lp + k * (W - Lp - Rp) / (dims.length - 1));
    const ys = (p) => H - B - p * (H - T - B);
    const mvals = metric === null ? [] : rows.map((r) => r.y[metric]);
    const [m0, m1] = mvals.length ? extent(mvals) : [0, 1];
    const maximize = state.direction === "maximize";
    const color = (v) => {
      let q = (v - m0) / (m1 - m0);
      if (maximize) q = 1 - q;  // q = 0 is best
      return `hsl(${Math.round(220 - 200 * q)}, 70%, 45%)`;
    };
    const lines = el("svg:g", { class: "lines" });
    let best = null;
    for (const r of rows) {
      let d = "", pen = "M";
      dims.forEach((dim, k) => {
        const p = scales[k].pos(value(r, dim));
        if (p === null) { pen = "M"; return; }
        d += pen + xs(k).toFixed(1) + "," + ys(p).toFixed(1);
        pen = "L";
      });
      const v = metric === null ? null : r.y[metric];
      lines.append(el("svg:path", { class: "pc-line", d: d, stroke: v === null ? "#888" : color(v) }));
      if (v !== null && (best === null || (maximize ? v > best.v : v < best.v))) best = { v: v, d: d };
    }
    svg.append(lines);
    if (best) svg.append(el("svg:path", { class: "pc-best", d: best.d }));
    const axes = el("svg:g", { class: "axis" });
    dims.forEach((dim, k) => {
      axes.append(el("svg:line", { x1: xs(k), y1: T, x2: xs(k), y2: H - B }),
        el("svg:text", { x: xs(k), y: T - 12, "text-anchor": "middle", class: "pc-axis" }, dim));
      const last = k === dims.length - 1 && dims.length > 1;  // labels inside the plot
      for (const [p, label] of scales[k].labels) {
        axes.append(el("svg:text", { x: xs(k) + (last ? -4 : 4), y: ys(p) + 4,
          "text-anchor": last ? "end" : "start" }, label));
      }
    });
    svg.append(axes);
  }

  function renderBest() {
    const box = $("best");
    const metric = state.metric;
    const maximize = state.direction === "maximize";
    let best = null;
    if (metric !== null) {
      for (const r of state.rows) {
        const v = r.y[metric];
        if (numeric(v) && (best === null || (maximize ? v > best.y[metric] : v < best.y[metric]))) best = r;
      }
    }
    box.replaceChildren();
    if (best === null) { box.className = "muted"; box.textContent = "no result yet"; return; }
    box.className = "";
    const dl = el("dl");
    dl.append(el("dt", {}, metric), el("dd", { id: "best-value" }, fmt(best.y[metric])));
    for (const [k, v] of Object.entries(best.x)) dl.append(el("dt", {}, k), el("dd", {}, fmt(v)));
    dl.append(el("dt", {}, "task"), el("dd", {}, "#" + best.i + " (" + best.key + ")"));
    box.append(dl);
  }

  function renderFailures(s) {
    $("n-failed").textContent = s.failures.n;
    const list = $("failures");
    const shown = [...state.failures.values()].sort((a, b) => b.seq - a.seq);
    if (list.dataset.shown === shown.map((f) => f.seq).join(",")) return;
    list.dataset.shown = shown.map((f) => f.seq).join(",");
    list.replaceChildren();
    for (const f of shown) {
      const li = el("li", { "data-key": f.key });
      li.append(el("span", { class: "message" }, f.message || "(no message)"));
      const about = Object.entries(f.x).map(([k, v]) => k + "=" + fmt(v)).join(", ");
      li.append(el("div", { class: "muted" }, "task " + f.key + (f.worker_id ? " on " + f.worker_id : "")
        + (about ? ": " + about : "")));
      if (f.traceback) {
        const det = el("details");
        det.append(el("summary", {}, "traceback"), el("pre", { class: "traceback" }, f.traceback));
        li.append(det);
      }
      list.append(li);
    }
    if (s.failures.n > shown.length && shown.length) {
      list.append(el("li", { class: "muted" }, "... " + (s.failures.n - shown.length) + " older failures not shown"));
    }
  }

  // ------------------------------------------------------------ wiring
  $("metric").addEventListener("change", (e) => {
    state.metric = e.target.value;
    if (state.summary && state.metric === state.summary.objective.metric) state.direction = state.summary.objective.direction;
    state.drawn = -1; render();
  });
  $("direction").addEventListener("change", (e) => { state.direction = e.target.value; state.drawn = -1; render(); });
  window.addEventListener("hashchange", fromHash);

  async function tick() {
    if (!state.busy) {
      state.busy = true;
      try {
        if (state.tick % LIST_EVERY === 0) await pollNetworks();
        if (state.id !== null) await pollNetwork();
        state.tick += 1;
      } finally {
        state.busy = false;
      }
    }
    setTimeout(tick, POLL_MS);
  }

  fromHash();
  tick();
})();
