"use strict";
// The comparison page: reads api/summary every few seconds and draws it. Everything it shows
// goes in through textContent or SVG attributes, never as markup. The admin token typed in
// lives in the input field only: sent with a control action, never stored.
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  // Okabe-Ito colours (distinguishable with colour-blindness), and a dash pattern per line too,
  // so lines differ without colour; the legend names every line.
  const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#8c564b"];
  const DASHES = ["", "6 3", "2 3", "9 3 2 3"];
  const COLUMNS = [
    { field: "model", label: "Model", key: true },
    { field: "arm", label: "Experiment arm", key: true },
    { field: "calls", label: "Calls", fmt: count },
    { field: "p50_seconds", label: "p50, ms", fmt: ms },
    { field: "p95_seconds", label: "p95, ms", fmt: ms, best: "fastest" },
    { field: "p95_ttft_seconds", label: "p95 TTFT, ms", fmt: ms },
    { field: "cost_per_10k_usd", label: "$ per 10k calls", fmt: usd, best: "cheapest" },
    { field: "error_ratio", label: "Errors, %", fmt: pct, best: "fewest errors" },
    { field: "retry_ratio", label: "Retries, %", fmt: pct },
    { field: "low_confidence_ratio", label: "Low conf., %", fmt: pct },
    { field: "repeatability", label: "Repeat same, %", fmt: pct },
    { field: "feedback.accepted", label: "Accepted", fmt: count },
    { field: "feedback.edited", label: "Edited", fmt: count },
    { field: "feedback.rejected", label: "Rejected", fmt: count },
    { field: "feedback.hallucination", label: "Hallucination", fmt: count },
    { field: "hallucinations_per_1k", label: "Halluc. per 1k", fmt: num1 },
    { field: "mean_edit_seconds", label: "Edit time, s", fmt: num1 },
  ];
  // Keys of an experiment's /status entry drawn in their own way; any other key is listed
  // under "More detail", so new ones show without a change here.
  const DRAWN = new Set(["mode", "active", "weights", "arms", "rolled_back", "trips", "gates",
    "stop_loss_gates", "rollout", "transitions", "actions"]);
  const DEFAULT_ACTIONS = ["resume"];

  const state = { window: "5m", timer: null, doc: null, refreshes: 0, interval: 5 };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Numbers, always with their unit.
  function count(v) { return v === null || v === undefined ? null : Math.round(v).toLocaleString("en-US"); }
  function ms(v) {
    if (v === null || v === undefined) return null;
    const value = v * 1000;
    return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US");
  }
  function usd(v) {
    if (v === null || v === undefined) return null;
    return "$" + (v >= 1 ? v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : v.toPrecision(2));
  }
  function pct(v) { return v === null || v === undefined ? null : (v * 100).toFixed(1); }
  function num1(v) { return v === null || v === undefined ? null : v.toFixed(1); }
  function field(row, path) { return path.split(".").reduce((o, k) => (o === null || o === undefined ? o : o[k]), row); }
  function clock(unix) { return new Date(unix * 1000).toLocaleTimeString("en-GB", { hour12: false }); }
  function span(seconds) {
    const s = Math.round(seconds);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function lineName(item) {
    return item.experiment ? `${item.model} · ${item.experiment}/${item.variant}` : item.model;
  }

  // The comparison table ------------------------------------------------------------------
  function armName(row) { return row.experiment ? `${row.experiment}/${row.variant}` : null; }

  // Like `model-sidecar report`, a column nothing was measured for in this window is left out.
  function measured(rows, column) {
    return column.key || rows.some((row) => { const v = field(row, column.field); return v !== null && v !== undefined && v !== 0; });
  }

  function renderTable(rows) {
    const columns = COLUMNS.filter((column) => measured(rows, column));
    const head = $("table-head");
    head.replaceChildren(...columns.map((column) => el("th", { scope: "col", class: column.key ? "key" : null }, column.label)));
    // A word for the single best value of a column (none on a tie).
    const best = {};
    for (const column of columns) {
      if (!column.best) continue;
      const values = rows.map((row) => field(row, column.field)).filter((v) => v !== null && v !== undefined);
      const lowest = Math.min(...values);
      if (values.length >= 2 && values.filter((v) => v === lowest).length === 1) best[column.field] = lowest;
    }
    const body = $("table-body");
    body.replaceChildren();
    for (const row of rows) {
      const tr = el("tr", { "data-model": row.model, "data-experiment": row.experiment, "data-variant": row.variant });
      for (const column of columns) {
        if (column.key) {
          const value = column.field === "arm" ? armName(row) : row.model;
          const cell = column.field === "model" ? el("th", { scope: "row", class: "key" }) : el("td", { class: "key" });
          cell.append(value || "—");
          tr.append(cell);
          continue;
        }
        const value = field(row, column.field);
        const text = column.fmt(value);
        const cell = el("td", {
          "data-field": column.field,
          "data-value": value === null || value === undefined ? "" : String(value),
        });
        if (text === null) {
          cell.append(el("span", { title: "not measured in this window" }, "—"));
        } else {
          cell.append(text);
        }
        if (column.field in best && best[column.field] === value) {
          cell.append(el("span", { class: "tag best" }, column.best));
        }
        tr.append(cell);
      }
      body.append(tr);
    }
    $("table-empty").hidden = rows.length > 0;
  }

  // Charts -----------------------------------------------------------------------------------
  function niceMax(value) {
    if (value <= 0) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function lineChart(target, times, series, key) {
    target.replaceChildren();
    const width = target.clientWidth || 600;
    const height = target.clientHeight || 190;
    target.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const m = { l: 64, r: 10, t: 10, b: 20 };
    let top = 0;
    for (const item of series) for (const v of item[key]) if (v !== null) top = Math.max(top, v * 1000);
    if (!times.length || top === 0) {
      target.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no calls yet"));
      return 0;
    }
    const max = niceMax(top);
    const t0 = times[0];
    const t1 = times[times.length - 1];
    const x = (t) => m.l + ((t - t0) / (t1 - t0 || 1)) * (width - m.l - m.r);
    const y = (v) => height - m.b - (v / max) * (height - m.t - m.b);
    for (let i = 0; i <= 4; i++) {
      const value = (max * i) / 4;
      target.append(svg("line", { class: "axis", x1: m.l, x2: width - m.r, y1: y(value), y2: y(value) }));
      target.append(svg("text", { x: m.l - 4, y: y(value) + 4, "text-anchor": "end" },
        (value < 10 && value > 0 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US")) + " ms"));
    }
    target.append(svg("text", { x: m.l, y: height - 4 }, clock(t0)));
    target.append(svg("text", { x: width - m.r, y: height - 4, "text-anchor": "end" }, clock(t1)));
    let drawn = 0;
    series.forEach((item, index) => {
      const colour = COLOURS[index % COLOURS.length];
      const dash = DASHES[index % DASHES.length];
      let d = "";
      let open = false;
      item[key].forEach((v, i) => {
        if (v === null) { open = false; return; }
        const px = x(times[i]).toFixed(1);
        const py = y(v * 1000).toFixed(1);
        const alone = (i === 0 || item[key][i - 1] === null) && (i === item[key].length - 1 || item[key][i + 1] === null);
        if (alone) {
          target.append(svg("circle", { cx: px, cy: py, r: 2.5, fill: colour, "data-line": lineName(item) }));
          drawn += 1;
        }
        d += (open ? "L" : "M") + px + " " + py;
        open = true;
      });
      if (!d) return;
      const path = svg("path", { d, fill: "none", stroke: colour, "stroke-width": 2, "stroke-dasharray": dash, "data-line": lineName(item) });
      path.append(svg("title", {}, lineName(item)));
      target.append(path);
      drawn += 1;
    });
    return drawn;
  }

  function renderLegend(series) {
    const legend = $("legend");
    legend.replaceChildren();
    series.forEach((item, index) => {
      const sample = svg("svg", { width: 28, height: 10, "aria-hidden": "true" });
      sample.append(svg("line", { x1: 0, x2: 28, y1: 5, y2: 5, stroke: COLOURS[index % COLOURS.length],
        "stroke-width": 2, "stroke-dasharray": DASHES[index % DASHES.length] }));
      legend.append(el("li", {}, sample, lineName(item)));
    });
  }

  function renderCost(rows) {
    const target = $("chart-cost");
    target.replaceChildren();
    const priced = rows.filter((row) => row.cost_per_10k_usd !== null).sort((a, b) => b.cost_per_10k_usd - a.cost_per_10k_usd);
    $("cost-empty").hidden = priced.length > 0;
    const width = target.clientWidth || 600;
    const rowHeight = 34;
    const height = Math.max(1, priced.length * rowHeight);
    target.setAttribute("viewBox", `0 0 ${width} ${height}`);
    target.setAttribute("height", height);
    const top = Math.max(...priced.map((row) => row.cost_per_10k_usd), 0) || 1;
    const room = Math.max(40, width - 90);
    priced.forEach((row, index) => {
      const y = index * rowHeight;
      const length = Math.max(2, (row.cost_per_10k_usd / top) * room);
      target.append(svg("text", { class: "bar-label", x: 0, y: y + 12 }, lineName(row)));
      const bar = svg("rect", { x: 0, y: y + 16, width: length.toFixed(1), height: 12, fill: COLOURS[index % COLOURS.length],
        "data-model": row.model, "data-variant": row.variant });
      bar.append(svg("title", {}, `${lineName(row)}: ${usd(row.cost_per_10k_usd)} per 10,000 calls`));
      target.append(bar);
      target.append(svg("text", { x: length + 6, y: y + 27 }, usd(row.cost_per_10k_usd)));
    });
  }

  function renderCharts(doc) {
    const charts = doc.charts;
    $("chart-note").textContent = `The last ${span(charts.span_seconds)}; each point shows the calls of the ${span(charts.point_covers_seconds)} before it, one every ${span(charts.step_seconds)}.`;
    const drawn = [
      lineChart($("chart-p50"), charts.times_unix, charts.series, "p50_seconds"),
      lineChart($("chart-p95"), charts.times_unix, charts.series, "p95_seconds"),
      lineChart($("chart-ttft"), charts.times_unix, charts.series, "p95_ttft_seconds"),
    ];
    renderLegend(charts.series);
    renderCost(doc.rows);
    document.body.dataset.chartLines = drawn.join(",");
  }

  // Experiments ------------------------------------------------------------------------------
  function plain(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "number") return Number.isInteger(value) ? value.toLocaleString("en-US") : String(Number(value.toPrecision(4)));
    if (typeof value === "string") return value;
    return null;
  }

  // Any JSON value, readable: plain values as text, lists of objects as tables, objects as
  // key/value lists.
  function generic(value) {
    const text = plain(value);
    if (text !== null) return document.createTextNode(text);
    if (Array.isArray(value)) {
      if (!value.length) return document.createTextNode("none");
      if (value.every((item) => item && typeof item === "object" && !Array.isArray(item))) {
        const keys = [...new Set(value.flatMap((item) => Object.keys(item)))];
        const table = el("table", {}, el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { scope: "col", class: "key" }, k)))));
        const body = el("tbody");
        for (const item of value) body.append(el("tr", {}, ...keys.map((k) => el("td", { class: "key" }, generic(item[k])))));
        table.append(body);
        return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "table" }, table);
      }
      return document.createTextNode(value.map((item) => plain(item) ?? JSON.stringify(item)).join(", "));
    }
    const list = el("dl", { class: "kv" });
    for (const [key, item] of Object.entries(value)) list.append(el("dt", {}, key), el("dd", {}, generic(item)));
    return list;
  }

  function stateWord(entry) {
    const rollout = entry.rollout;
    if (rollout && typeof rollout === "object" && typeof rollout.state === "string") {
      const word = rollout.state.replace(/_/g, " ");
      const tone = /roll|abort|fail|error/i.test(word) ? "bad" : /promot|complete|done/i.test(word) ? "good" : "neutral";
      return [word, tone];
    }
    if (entry.rolled_back && entry.rolled_back.length) return ["rolled back: " + entry.rolled_back.join(", "), "bad"];
    if (entry.active === false) return ["inactive", "neutral"];
    return ["running", "good"];
  }

  function gateValue(value, unit) {
    if (value === null || value === undefined) return "—";
    if (unit === "ratio") return value.toFixed(2) + "×";
    if (unit === "difference") return (value >= 0 ? "+" : "") + (value * 100).toFixed(1) + " pts";
    return plain(value);
  }

  function gatesTable(gates) {
    if (!Array.isArray(gates) || !gates.every((g) => g && "gate" in g && "state" in g && "limit" in g)) return generic(gates);
    if (!gates.length) return document.createTextNode("no limits configured");
    const table = el("table", { class: "gates" }, el("thead", {}, el("tr", {},
      el("th", { scope: "col", class: "key" }, "Candidate"), el("th", { scope: "col", class: "key" }, "Gate"),
      el("th", { scope: "col" }, "Now"), el("th", { scope: "col" }, "Limit"), el("th", { scope: "col", class: "key" }, "State"))));
    const body = el("tbody");
    for (const gate of gates) {
      const tone = gate.state === "holds" ? "good" : gate.state === "not judged" ? "neutral" : "bad";
      let evidence = null;
      if (gate.state === "not judged" && gate.min_calls !== undefined) {
        evidence = ` (${plain(gate.calls)} and ${plain(gate.control_calls)} calls of ${plain(gate.min_calls)} needed)`;
      }
      body.append(el("tr", { "data-gate": gate.gate, "data-variant": gate.variant },
        el("td", { class: "key" }, gate.variant || "—"), el("td", { class: "key" }, String(gate.gate).replace(/_/g, " ")),
        el("td", {}, gateValue(gate.value, gate.unit)), el("td", {}, "≤ " + gateValue(gate.limit, gate.unit)),
        el("td", { class: "key" }, el("span", { class: "state " + tone }, gate.state), evidence)));
    }
    table.append(body);
    return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "stop-loss gates" }, table);
  }

  function transitionsList(entry) {
    const items = [];
    for (const trip of entry.trips || []) {
      items.push([trip.at_unix || 0, `${trip.variant} rolled back by the stop-loss (${trip.reason}): ${trip.detail}`]);
    }
    for (const item of Array.isArray(entry.transitions) ? entry.transitions : []) {
      if (!item || typeof item !== "object") { items.push([0, String(item)]); continue; }
      const at = Object.entries(item).find(([k, v]) => /unix|time|at$/.test(k) && typeof v === "number");
      const words = Object.entries(item).filter(([k]) => !at || k !== at[0]).map(([k, v]) => `${k}: ${plain(v) ?? JSON.stringify(v)}`);
      items.push([at ? at[1] : 0, words.join(", ")]);
    }
    if (!items.length) return el("p", { class: "muted" }, "No transitions yet.");
    items.sort((a, b) => a[0] - b[0]);
    return el("ol", { class: "transitions" }, ...items.map(([at, text]) => el("li", {}, at ? clock(at) + " — " : "", text)));
  }

  function weightsTable(entry) {
    const arms = entry.arms || {};
    const table = el("table", { class: "weights" }, el("thead", {}, el("tr", {},
      el("th", { scope: "col", class: "key" }, "Arm"), el("th", { scope: "col", class: "key" }, "Model"),
      el("th", { scope: "col" }, "Weight, %"))));
    const body = el("tbody");
    const weights = entry.weights || {};
    // Every arm, a rolled-back one at 0 % (weights now name only the arms taking traffic).
    for (const arm of [...new Set([...Object.keys(weights), ...Object.keys(arms)])]) {
      const weight = weights[arm] || 0;
      const model = arms[arm] && arms[arm].model;
      body.append(el("tr", { "data-arm": arm }, el("td", { class: "key" }, arm), el("td", { class: "key" }, model || "—"),
        el("td", {}, el("span", { class: "weight", style: null, "aria-hidden": "true", "data-width": weight }), plain(weight) + " %")));
    }
    table.append(body);
    return table;
  }

  function renderExperiments(experiments, sidecar) {
    const list = $("experiment-list");
    list.replaceChildren();
    const names = Object.keys(experiments || {});
    $("experiments-empty").hidden = names.length > 0;
    const tokenRequired = sidecar && sidecar.admin_control === "token";
    $("token-note").textContent = tokenRequired
      ? "Buttons stay off until a token is typed in."
      : "This sidecar has no admin token set (admin_token_file), so the page offers no control actions.";
    $("token").disabled = !tokenRequired;
    for (const name of names) {
      const entry = experiments[name];
      const [word, tone] = stateWord(entry);
      const article = el("article", { class: "experiment", "data-experiment": name, "aria-labelledby": "exp-" + name },
        el("h3", { id: "exp-" + name }, name, el("span", { class: "tag" }, entry.mode || "experiment"),
          el("span", { class: "state " + tone, "data-state": word }, word)));
      const parts = el("div", { class: "parts" });
      parts.append(el("div", {}, el("h4", {}, "Weights now"), weightsTable(entry)));
      const gates = "gates" in entry ? entry.gates : entry.stop_loss_gates;
      if (gates !== undefined) parts.append(el("div", {}, el("h4", {}, "Stop-loss gates"), gatesTable(gates)));
      article.append(parts);
      if (entry.rollout !== undefined) article.append(el("h4", {}, "Rollout"), generic(entry.rollout));
      article.append(el("h4", {}, "Transitions"), transitionsList(entry));
      const rest = Object.fromEntries(Object.entries(entry).filter(([k]) => !DRAWN.has(k)));
      if (Object.keys(rest).length) article.append(el("details", {}, el("summary", {}, "More detail"), generic(rest)));
      const actions = el("div", { class: "actions" });
      for (const action of Array.isArray(entry.actions) ? entry.actions : DEFAULT_ACTIONS) {
        const button = el("button", { type: "button", "data-action": action, "aria-describedby": "token-note" }, `${action} ${name}`);
        button.addEventListener("click", () => act(name, action));
        actions.append(button);
      }
      article.append(actions);
      list.append(article);
    }
    // Weight bars: widths set through the CSSOM (the page's policy allows no inline styles).
    for (const bar of list.querySelectorAll(".weight")) bar.style.width = Math.max(0, Number(bar.dataset.width)) * 0.8 + "px";
    updateButtons();
  }

  function updateButtons() {
    const token = $("token");
    const on = !token.disabled && token.value.trim() !== "";
    for (const button of document.querySelectorAll("button[data-action]")) button.disabled = !on;
  }

  async function act(name, action) {
    const token = $("token").value.trim();
    if (!token) return;
    const result = $("action-result");
    result.textContent = `${action} ${name}…`;
    try {
      const response = await fetch(`experiments/${encodeURIComponent(name)}/${encodeURIComponent(action)}`, {
        method: "POST", cache: "no-store", headers: { Authorization: "Bearer " + token },
      });
      let message = `HTTP ${response.status}`;
      try {
        const body = await response.json();
        if (body && body.error && body.error.message) message = body.error.message;
      } catch (_) { /* not JSON */ }
      result.textContent = response.ok ? `${action} ${name}: done.` : `${action} ${name} refused: ${message}`;
    } catch (error) {
      result.textContent = `${action} ${name} failed: ${error.message}`;
    }
    refresh();
  }

  // The whole page ---------------------------------------------------------------------------
  function render(doc) {
    state.doc = doc;
    const sidecar = doc.sidecar || {};
    const control = sidecar.admin_control === "token" ? "control actions need the admin token" : "no admin token set: control actions off";
    $("about").textContent = `model-sidecar ${sidecar.version || ""} · up ${span(sidecar.uptime_seconds || 0)}${sidecar.draining ? " · DRAINING" : ""} · ${control}`;
    const win = doc.window;
    const names = { "5m": "Last 5 min", "1h": "Last hour", start: "Since start" };
    let note = `${names[win.name] || "Window " + win.name}: ${clock(win.from_unix)} to ${clock(doc.generated_at_unix)} (${span(win.seconds)})`;
    if (win.since_start && win.requested_seconds) note += ", everything since the sidecar started";
    $("window-note").textContent = note + ".";
    renderTable(doc.rows);
    renderCharts(doc);
    renderExperiments(doc.experiments, sidecar);
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
    document.body.dataset.generated = String(doc.generated_at_unix);
    document.body.dataset.window = win.name;
    $("updated").textContent = `Updated ${clock(doc.generated_at_unix)}, every ${span(doc.refresh_seconds)}.`;
    $("json-link").setAttribute("href", "api/summary?window=" + encodeURIComponent(win.name));
  }

  async function refresh() {
    clearTimeout(state.timer);
    const asked = state.window;
    try {
      const response = await fetch("api/summary?window=" + encodeURIComponent(asked), { cache: "no-store", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const doc = await response.json();
      state.interval = doc.refresh_seconds || state.interval;
      if (asked === state.window) render(doc);
    } catch (error) {
      $("updated").textContent = `Cannot reach the sidecar (${error.message}); trying again.`;
    }
    clearTimeout(state.timer);
    state.timer = setTimeout(refresh, state.interval * 1000);
  }

  for (const button of document.querySelectorAll("button[data-window]")) {
    button.addEventListener("click", () => {
      state.window = button.dataset.window;
      for (const other of document.querySelectorAll("button[data-window]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      refresh();
    });
  }
  $("token").addEventListener("input", updateButtons);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (state.doc) renderCharts(state.doc); }, 150);
  });
  refresh();
})();
