/* Shared helpers for the dashboard pages: palette, number formats, axis labels, Plotly defaults. */
"use strict";
const SW = (() => {
  const el = document.getElementById("page-data");
  const data = el ? JSON.parse(el.textContent) : {};
  // Okabe & Ito (2008); vermillion is kept for failures, so series colours skip it and the orange next to it.
  const SERIES = ["#0072B2", "#009E73", "#CC79A7", "#000000", "#56B4E9", "#F0E442"];
  const SYMBOLS = ["circle", "square", "diamond", "triangle-up", "star", "hexagon", "pentagon"];
  const FAIL = "#D55E00";
  const LABELS = {
    learning_rate: "learning rate (unitless step size, log-spaced grid)",
    batch_size: "batch size (examples per step)",
    beta_1: "β₁ (Adam first-moment decay, unitless)",
    beta_2: "β₂ (Adam second-moment decay, unitless)",
    momentum: "momentum (unitless)",
    rho: "ρ (RMSprop decay, unitless)",
    clipnorm: "gradient clip norm (L2 norm)",
    weight_decay: "weight decay (unitless)",
  };
  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    if (!isFinite(v)) return "non-finite";
    if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1).replace("e-", "e−");
    return String(Number(v.toPrecision(3)));
  }
  function axisLabel(dim) { return LABELS[dim] || `${dim} (as swept)`; }
  function pct(v) { return v === null || v === undefined ? "—" : `${Math.round(100 * v)}%`; }
  /* Position of value v on an axis whose ticks are the sorted grid values at 0..n-1,
     interpolated in log space for positive grids (so a geometric mean falls halfway). */
  function gridIndex(v, values, transform) {
    const t = transform || ((x) => x);
    const tv = t(v);
    const ts = values.map(t);
    if (ts.length === 1) return tv === ts[0] ? 0 : null;
    if (tv < ts[0] || tv > ts[ts.length - 1]) return null;
    for (let i = 0; i < ts.length - 1; i++) {
      if (tv >= ts[i] && tv <= ts[i + 1]) return i + (ts[i + 1] === ts[i] ? 0 : (tv - ts[i]) / (ts[i + 1] - ts[i]));
    }
    return null;
  }
  function logT(values) {
    return values.every((x) => typeof x === "number" && x > 0) ? (x) => Math.log(x) : null;
  }
  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud", "lasso2d", "select2d"] };
  function layout(extra) {
    return Object.assign({
      margin: { l: 80, r: 30, t: 40, b: 70 },
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif", size: 13 },
      paper_bgcolor: "#fff", plot_bgcolor: "#fff",
      showlegend: true,
      legend: { orientation: "h", y: -0.22, x: 0 },
      hoverlabel: { namelength: -1 },
    }, extra || {});
  }
  function empty(div, text) {
    if (div.data) Plotly.purge(div);
    div.classList.add("empty-plot");
    div.textContent = text;
  }
  function filled(div) {
    if (div.classList.contains("empty-plot")) { div.classList.remove("empty-plot"); div.textContent = ""; }
  }
  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail; } catch (e) { /* not JSON */ }
      throw new Error(`${r.status}: ${detail}`);
    }
    return r.json();
  }
  const classStyle = data.class_style || {};
  function clsColor(c) { return (classStyle[c] || {}).color || "#999999"; }
  function clsLabel(c) { return (classStyle[c] || {}).label || c || "unclassified"; }
  function clsSymbol(c) { return (classStyle[c] || {}).symbol || "circle"; }
  return { data, SERIES, SYMBOLS, FAIL, fmt, pct, axisLabel, gridIndex, logT, config, layout, empty, filled, getJSON, clsColor, clsLabel, clsSymbol };
})();
