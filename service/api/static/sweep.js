/* The sweep page: live progress, the stability heatmap, the beta plane, loss versus lr, the edge. */
"use strict";
(() => {
  const P = SW.data;
  const base = `/v1/sweeps/${P.sweep_id}`;
  const LR = "learning_rate", BS = "batch_size", B1 = "beta_1", B2 = "beta_2";
  const TERMINAL = ["completed", "failed", "cancelled"];
  const view = { x: LR, y: BS, fixed: {}, betaFixed: {}, dimsKey: null, dims: {} };
  let runsDone = P.runs_done, state = P.state, busy = false, pending = false;

  const $ = (id) => document.getElementById(id);

  function sliceLabel(obj) {
    const parts = Object.entries(obj || {}).map(([k, v]) => `${k}=${SW.fmt(v)}`);
    return parts.length ? parts.join(", ") : "";
  }

  function select(label, options, value, onChange, id) {
    const wrap = document.createElement("label");
    wrap.textContent = label + " ";
    const s = document.createElement("select");
    if (id) s.id = id;
    for (const [v, text] of options) {
      const o = document.createElement("option");
      o.value = v; o.textContent = text;
      if (String(v) === String(value)) o.selected = true;
      s.appendChild(o);
    }
    s.addEventListener("change", () => onChange(s.value));
    wrap.appendChild(s);
    return wrap;
  }

  function buildControls() {
    const dims = view.dims, names = Object.keys(dims);
    const box = $("region-controls");
    box.textContent = "";
    if (names.length < 2) { box.textContent = names.length ? `Only ${names[0]} was swept.` : ""; return; }
    if (!(view.x in dims)) view.x = names[0];
    if (!(view.y in dims) || view.y === view.x) view.y = names.find((n) => n !== view.x);
    const opts = names.map((n) => [n, n]);
    box.appendChild(select("x axis", opts, view.x, (v) => { if (v === view.y) view.y = view.x; view.x = v; delete view.fixed[v]; buildControls(); drawRegion(); drawFluct(); }, "region-x"));
    box.appendChild(select("y axis", opts, view.y, (v) => { if (v === view.x) view.x = view.y; view.y = v; delete view.fixed[v]; buildControls(); drawRegion(); drawFluct(); }, "region-y"));
    for (const n of names) {
      if (n === view.x || n === view.y) continue;
      const vals = [["", "all (pooled)"], ...dims[n].map((v) => [String(v), SW.fmt(v)])];
      box.appendChild(select(`slice ${n}`, vals, view.fixed[n] ?? "", (v) => { if (v === "") delete view.fixed[n]; else view.fixed[n] = v; drawRegion(); drawFluct(); }, `slice-${n}`));
    }
    const bbox = $("beta-controls");
    bbox.textContent = "";
    for (const n of names) {
      if (n === B1 || n === B2) continue;
      const vals = [["", "all (pooled)"], ...dims[n].map((v) => [String(v), SW.fmt(v)])];
      bbox.appendChild(select(`slice ${n}`, vals, view.betaFixed[n] ?? "", (v) => { if (v === "") delete view.betaFixed[n]; else view.betaFixed[n] = v; drawBeta(); }, `beta-slice-${n}`));
    }
  }

  function heatTraces(region, opts) {
    const xs = region.x_values, ys = region.y_values, cells = region.cells;
    const z = cells.map((row) => row.map((c) => (c ? c.success_rate : null)));
    const text = cells.map((row) => row.map((c) => (c ? `${c.successes}/${c.n}` : "")));
    const hover = cells.map((row, iy) => row.map((c, ix) => {
      const head = `${region.x}=${SW.fmt(xs[ix])}<br>${region.y}=${SW.fmt(ys[iy])}`;
      if (!c) return `${head}<br>no finished runs`;
      const mix = Object.entries(c.class_mix).map(([k, v]) => `${SW.clsLabel(k)} ${v}`).join(", ");
      const pooled = c.n_configs > 1 ? `<br>${c.n_configs} configurations pooled` : "";
      return `${head}<br>stable ${c.successes}/${c.n} = ${SW.pct(c.success_rate)} [95% CI ${SW.pct(c.wilson[0])}, ${SW.pct(c.wilson[1])}]<br>${mix}${pooled}`;
    }));
    const traces = [{
      type: "heatmap", name: "success rate", x: xs.map((_, i) => i), y: ys.map((_, i) => i), z,
      text, texttemplate: "%{text}", textfont: { size: 12 }, customdata: hover,
      hovertemplate: "%{customdata}<extra></extra>", colorscale: "Cividis", zmin: 0, zmax: 1, xgap: 2, ygap: 2,
      colorbar: { title: { text: "success rate<br>(share of seeds)" }, tickformat: ".0%", len: 0.9 },
      showscale: true,
    }];
    const byClass = {};
    cells.forEach((row, iy) => row.forEach((c, ix) => {
      if (!c || !c.dominant_class) return;
      (byClass[c.dominant_class] = byClass[c.dominant_class] || { x: [], y: [] });
      byClass[c.dominant_class].x.push(ix); byClass[c.dominant_class].y.push(iy + 0.27);
    }));
    for (const [cls, pts] of Object.entries(byClass)) {
      traces.push({
        type: "scatter", mode: "markers", name: `most common: ${SW.clsLabel(cls)}`, x: pts.x, y: pts.y,
        marker: { symbol: SW.clsSymbol(cls), color: SW.clsColor(cls), size: 13, line: { color: cls === "slow" ? SW.clsColor(cls) : "#ffffff", width: cls === "slow" ? 3 : 1.5 } },
        hoverinfo: "skip", meta: { role: "dominant", run_class: cls },
      });
    }
    return traces;
  }

  function heatLayout(region, extra) {
    const xs = region.x_values, ys = region.y_values;
    return SW.layout(Object.assign({
      height: Math.max(380, Math.min(700, 120 + 70 * ys.length)),
      xaxis: { title: { text: SW.axisLabel(region.x) }, tickmode: "array", tickvals: xs.map((_, i) => i), ticktext: xs.map(SW.fmt), range: [-0.62, xs.length - 0.38], showgrid: false, zeroline: false },
      yaxis: { title: { text: SW.axisLabel(region.y) }, tickmode: "array", tickvals: ys.map((_, i) => i), ticktext: ys.map(SW.fmt), range: [-0.62, ys.length - 0.38], showgrid: false, zeroline: false },
      legend: { orientation: "h", y: -0.25, x: 0 },
    }, extra || {}));
  }

  function edgeTraces(region) {
    const lrIsX = region.x === LR && region.y === BS, lrIsY = region.y === LR && region.x === BS;
    if (!lrIsX && !lrIsY) return [];
    const lrs = lrIsX ? region.x_values : region.y_values, bss = lrIsX ? region.y_values : region.x_values;
    const t = SW.logT(lrs);
    const groups = {};
    for (const e of region.edges || []) {
      const rest = Object.assign({}, e.group); delete rest[BS];
      const key = sliceLabel(Object.fromEntries(Object.entries(rest).filter(([k]) => k in view.dims)));
      (groups[key] = groups[key] || []).push(e);
    }
    const traces = [];
    Object.entries(groups).slice(0, 6).forEach(([key, edges], gi) => {
      const pts = [];
      for (const e of edges) {
        const b = bss.findIndex((v) => String(v) === String(e.group[BS]));
        if (b < 0) continue;
        let pos, symbol, what;
        if (e.censored === "above") { pos = lrs.length - 0.5; symbol = lrIsX ? "triangle-right" : "triangle-up"; what = `edge ≥ ${SW.fmt(e.bracket[0])} (every larger lr tried was stable)`; }
        else if (e.censored === "below") { pos = -0.5; symbol = lrIsX ? "triangle-left" : "triangle-down"; what = `edge < ${SW.fmt(e.bracket[1])} (no lr tried was stable)`; }
        else { pos = SW.gridIndex(e.edge, lrs, t); symbol = "circle"; what = `edge ≈ ${SW.fmt(e.edge)} (between ${SW.fmt(e.bracket[0])} and ${SW.fmt(e.bracket[1])})`; }
        if (pos === null) continue;
        pts.push({ b, pos, symbol, what: `batch size ${SW.fmt(e.group[BS])}: ${what}` });
      }
      pts.sort((a, b) => a.b - b.b);
      if (!pts.length) return;
      const xy = (p) => (lrIsX ? [p.pos, p.b] : [p.b, p.pos]);
      const X = pts.map((p) => xy(p)[0]), Y = pts.map((p) => xy(p)[1]);
      traces.push({ type: "scatter", mode: "lines", x: X, y: Y, line: { color: "#ffffff", width: 7 }, hoverinfo: "skip", showlegend: false, meta: { role: "edge-underlay" } });
      traces.push({
        type: "scatter", mode: "lines+markers", name: "edge of stability" + (key ? ` (${key})` : ""), x: X, y: Y,
        line: { color: "#000000", width: 3, dash: ["dash", "dot", "dashdot", "longdash", "solid", "longdashdot"][gi] },
        marker: { symbol: pts.map((p) => p.symbol), size: 11, color: "#000000", line: { color: "#ffffff", width: 1.5 } },
        text: pts.map((p) => p.what), hovertemplate: "%{text}<extra></extra>", meta: { role: "edge" },
      });
    });
    return traces;
  }

  function query(x, y, fixed) {
    const q = new URLSearchParams({ x, y });
    for (const [k, v] of Object.entries(fixed)) if (k !== x && k !== y) q.set(k, v);
    return q.toString();
  }

  async function drawRegion() {
    const div = $("region-plot");
    if (Object.keys(view.dims).length < 2) { SW.empty(div, runsDone ? "Fewer than two dimensions were swept: no map to draw." : "No finished runs yet: the map appears as configurations finish."); return; }
    let region;
    try { region = await SW.getJSON(`${base}/heatmap?${query(view.x, view.y, view.fixed)}`); }
    catch (e) { SW.empty(div, `Could not load the map: ${e.message}`); return; }
    if (!region.cells.length) { SW.empty(div, "No finished runs in this slice yet."); return; }
    SW.filled(div);
    const pooled = (region.pooled_over || []).length ? ` — pooled over ${region.pooled_over.join(", ")}` : "";
    const fixed = sliceLabel(region.fixed);
    await Plotly.react(div, [...heatTraces(region), ...edgeTraces(region)], heatLayout(region, { title: { text: `Success rate: ${region.y} × ${region.x}${fixed ? ` at ${fixed}` : ""}${pooled}`, font: { size: 14 } } }), SW.config);
    if (!div.dataset.clickBound) {
      div.dataset.clickBound = "1";
      div.on("plotly_click", (ev) => {
        const pt = ev.points && ev.points[0];
        if (!pt || pt.data.type !== "heatmap" || !div._region) return;
        const c = div._region.cells[pt.pointIndex[0]][pt.pointIndex[1]];
        if (c && c.config_id) window.location.href = `/sweeps/${P.sweep_id}/configs/${c.config_id}`;
      });
    }
    div._region = region;
  }

  async function drawFluct() {
    const div = $("fluct-plot");
    if (Object.keys(view.dims).length < 2) { SW.empty(div, "Fewer than two dimensions were swept: no fluctuation map to draw."); return; }
    let region;
    try { region = await SW.getJSON(`${base}/heatmap?${query(view.x, view.y, view.fixed)}&metric=fluctuation`); }
    catch (e) { SW.empty(div, `Could not load the fluctuation map: ${e.message}`); return; }
    const z = region.cells.map((row) => row.map((c) => (c && c.value !== null && c.value !== undefined ? c.value : null)));
    if (!z.some((row) => row.some((v) => v !== null))) { SW.empty(div, "No fluctuation measured in this slice yet."); return; }
    SW.filled(div);
    const xs = region.x_values, ys = region.y_values;
    const jump = (c) => (c && c.fluctuation && c.fluctuation.jump_p90 ? c.fluctuation.jump_p90.median : null);
    const text = region.cells.map((row) => row.map((c) => (jump(c) ? `~${SW.fmt(jump(c))}x` : "")));
    const hover = region.cells.map((row, iy) => row.map((c, ix) => {
      const head = `${region.x}=${SW.fmt(xs[ix])}<br>${region.y}=${SW.fmt(ys[iy])}`;
      const f = c && c.fluctuation && c.fluctuation.fluctuation;
      if (!f) return `${head}<br>no fluctuation measured`;
      return `${head}<br>fluctuation ${SW.fmt(f.median)} (IQR ${SW.fmt(f.q25)} to ${SW.fmt(f.q75)}, ${f.n} seeds)<br>loss jumps ~${SW.fmt(jump(c))}x between epochs`;
    }));
    const trace = {
      type: "heatmap", name: "fluctuation", x: xs.map((_, i) => i), y: ys.map((_, i) => i), z,
      text, texttemplate: "%{text}", textfont: { size: 12 }, customdata: hover,
      hovertemplate: "%{customdata}<extra></extra>", colorscale: "Viridis", xgap: 2, ygap: 2,
      colorbar: { title: { text: "fluctuation index<br>(ln loss per epoch)" }, len: 0.9 }, meta: { role: "fluctuation" },
    };
    await Plotly.react(div, [trace], heatLayout(region, { title: { text: `Fluctuation: ${region.y} × ${region.x}`, font: { size: 14 } } }), SW.config);
  }

  function drawFluctBatch(plotsData) {
    const div = $("fluct-batch-plot"), d = plotsData.fluctuation;
    if (!d || !d.series.length) { SW.empty(div, d && d.measured ? "Sweep two or more batch sizes to see how fluctuation scales with batch size." : "No fluctuation measured yet."); return; }
    SW.filled(div);
    const traces = [], notes = [];
    d.series.forEach((sr, gi) => {
      const color = SW.SERIES[gi % SW.SERIES.length];
      const name = sliceLabel(sr.group) || "all";
      traces.push({
        type: "scatter", mode: "markers", name, x: sr.x, y: sr.median,
        error_y: { type: "data", symmetric: false, array: sr.q75.map((v, i) => v - sr.median[i]), arrayminus: sr.median.map((v, i) => v - sr.q25[i]), width: 5 },
        marker: { color, size: 10, symbol: SW.SYMBOLS[gi % SW.SYMBOLS.length] },
        customdata: sr.jump.map((j, i) => `${sr.n[i]} stable seeds; loss jumps ~${j ? SW.fmt(j) : "?"}x between epochs`),
        hovertemplate: "batch size %{x}: fluctuation %{y:.3g}<br>%{customdata}<extra></extra>", meta: { role: "fluct-series" },
      });
      const ci = sr.ci ? ` [95% CI ${SW.fmt(sr.ci[0])}, ${SW.fmt(sr.ci[1])}]` : "";
      const label = `${name}: fluctuation ∝ B^${SW.fmt(sr.slope)}${ci}`;
      notes.push(`${name}: B^${SW.fmt(sr.slope)}`);
      const b0 = Math.min(...sr.x), b1 = Math.max(...sr.x), lx = [], ly = [];
      for (let k = 0; k <= 20; k++) { const b = b0 * Math.pow(b1 / b0, k / 20); lx.push(b); ly.push(Math.exp(sr.intercept) * Math.pow(b, sr.slope)); }
      traces.push({ type: "scatter", mode: "lines", name: label, x: lx, y: ly, line: { color, width: 2, dash: "dash" }, hoverinfo: "skip", meta: { role: "fluct-fit" } });
    });
    Plotly.react(div, traces, SW.layout({
      height: 420,
      title: { text: `Fluctuation versus batch size — ${notes.join("; ")} (mini-batch noise predicts ≈ −0.5)`, font: { size: 14 } },
      xaxis: { type: "log", title: { text: "batch size (examples per step, log scale)" }, exponentformat: "power" },
      yaxis: { type: "log", title: { text: "fluctuation index (ln loss per epoch, log scale)" }, exponentformat: "power" },
      legend: { orientation: "h", y: -0.3, x: 0 },
    }), SW.config);
  }

  async function drawBeta() {
    const sec = $("beta-section"), div = $("beta-plot");
    if (!(B1 in view.dims && B2 in view.dims)) { sec.hidden = true; return; }
    sec.hidden = false;
    let region;
    try { region = await SW.getJSON(`${base}/heatmap?${query(B1, B2, view.betaFixed)}`); }
    catch (e) { SW.empty(div, `Could not load the beta plane: ${e.message}`); return; }
    SW.filled(div);
    const xs = region.x_values, ys = region.y_values;
    const t = (v) => -Math.log(1 - v);  // betas crowd towards 1: space them by -log(1 - beta)
    const okT = [...xs, ...ys].every((v) => v < 1);
    const tf = okT ? t : (v) => v;
    const curve = { x: [], y: [] };
    const t0 = tf(ys[0]), t1 = tf(ys[ys.length - 1]);
    for (let k = 0; k <= 200; k++) {
      const tb2 = t0 + ((t1 - t0) * k) / 200;
      const b2 = okT ? 1 - Math.exp(-tb2) : tb2;
      const yi = SW.gridIndex(b2, ys, tf);
      const xi = extIndex(Math.sqrt(b2), xs, tf);
      if (xi !== null && yi !== null && xi >= -0.5 && xi <= xs.length - 0.5) { curve.x.push(xi); curve.y.push(yi); }
    }
    const traces = heatTraces(region);
    if (curve.x.length > 1) {
      traces.push({ type: "scatter", mode: "lines", x: curve.x, y: curve.y, line: { color: "#ffffff", width: 6 }, hoverinfo: "skip", showlegend: false, meta: { role: "curve-underlay" } });
      traces.push({ type: "scatter", mode: "lines", name: "β₁ = √β₂ (Zhang et al. 2022)", x: curve.x, y: curve.y, line: { color: "#000000", width: 2.5, dash: "dot" }, hoverinfo: "skip", meta: { role: "reference" } });
    }
    const fixed = sliceLabel(region.fixed);
    const pooled = (region.pooled_over || []).length ? ` — pooled over ${region.pooled_over.join(", ")}` : "";
    await Plotly.react(div, traces, heatLayout(region, { title: { text: `Success rate over the beta plane${fixed ? ` at ${fixed}` : ""}${pooled}`, font: { size: 14 } } }), SW.config);
  }

  function extIndex(v, values, tf) {
    // gridIndex, extended by up to half a cell beyond either end of the grid.
    const inside = SW.gridIndex(v, values, tf);
    if (inside !== null || values.length < 2) return inside;
    const ts = values.map(tf), tv = tf(v), n = ts.length;
    if (tv < ts[0]) return -(ts[0] - tv) / (ts[1] - ts[0]);
    return n - 1 + (tv - ts[n - 1]) / (ts[n - 1] - ts[n - 2]);
  }

  function drawLossLr(plotsData) {
    const div = $("loss-lr-plot"), d = plotsData.loss_vs_lr;
    if (!d || !d.series.length) { SW.empty(div, d ? "No finished runs yet." : "The learning rate was not swept."); return; }
    SW.filled(div);
    const traces = [];
    let ymax = 0;
    d.series.forEach((s, i) => {
      const pts = s.points.filter((p) => p.median !== null);
      for (const p of s.points) ymax = Math.max(ymax, p.q75 || 0, p.failed_median || 0);
      traces.push({
        type: "scatter", mode: "lines+markers", name: `batch size ${SW.fmt(s.batch_size)}`,
        x: pts.map((p) => p.lr), y: pts.map((p) => p.median),
        error_y: { type: "data", symmetric: false, array: pts.map((p) => p.q75 - p.median), arrayminus: pts.map((p) => p.median - p.q25), thickness: 1.2, width: 4 },
        line: { color: SW.SERIES[i % SW.SERIES.length], width: 2 },
        marker: { color: SW.SERIES[i % SW.SERIES.length], symbol: SW.SYMBOLS[i % SW.SYMBOLS.length], size: 8 },
        text: pts.map((p) => `${p.n} seeds, ${p.failed} failed; IQR ${SW.fmt(p.q25)} to ${SW.fmt(p.q75)}`),
        hovertemplate: "lr %{x:.3g}: median final loss %{y:.4g}<br>%{text}<extra>batch size " + SW.fmt(s.batch_size) + "</extra>",
        meta: { role: "series" },
      });
    });
    const top = ymax > 0 ? ymax * 1.6 : 1;
    const fx = [], fy = [], fs = [], ft = [];
    d.series.forEach((s) => s.points.forEach((p) => {
      if (!p.failed) return;
      fx.push(p.lr);
      fy.push(p.failed_median !== null && p.failed_nonfinite < p.failed ? p.failed_median : top);
      fs.push(9 + 4 * Math.sqrt(p.failed));
      ft.push(`batch size ${SW.fmt(s.batch_size)}, lr ${SW.fmt(p.lr)}: ${p.failed} of ${p.n} seeds failed` + (p.failed_nonfinite ? ` (${p.failed_nonfinite} non-finite, drawn at the top)` : ""));
    }));
    if (fx.length) {
      traces.push({
        type: "scatter", mode: "markers", name: "failed seeds (red ×)", x: fx, y: fy, text: ft,
        marker: { symbol: "x", color: SW.FAIL, opacity: 1, size: fs, line: { color: "#7a2a00", width: 1 } },
        hovertemplate: "%{text}<extra></extra>", meta: { role: "failed" },
      });
    }
    const pooled = d.pooled_over.length ? ` (pooled over ${d.pooled_over.join(", ")})` : "";
    Plotly.react(div, traces, SW.layout({
      height: 440,
      title: { text: `Final training loss versus learning rate${pooled}`, font: { size: 14 } },
      xaxis: { type: "log", title: { text: "learning rate (unitless, log scale)" }, exponentformat: "power" },
      yaxis: { type: "log", title: { text: `final training loss (${plotsData.loss_unit}, log scale)` }, exponentformat: "power" },
      shapes: d.l0 ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: d.l0, y1: d.l0, line: { color: "#777", width: 1, dash: "dot" } }] : [],
      annotations: d.l0 ? [{ xref: "paper", x: 1, y: Math.log10(d.l0), xanchor: "right", yanchor: "bottom", text: `loss at initialisation ≈ ${SW.fmt(d.l0)}`, showarrow: false, font: { size: 11, color: "#555" } }] : [],
    }), SW.config);
  }

  function drawEdge(plotsData) {
    const div = $("edge-plot"), d = plotsData.edge;
    if (!d.edges.length) { SW.empty(div, "No edge yet: it needs a swept learning rate and finished runs."); return; }
    const sizes = [...new Set(d.edges.map((e) => e.batch_size))];
    if (sizes.length < 2) { SW.empty(div, `Only one batch size (${SW.fmt(sizes[0])}) was swept: the edge per slice is in the diagnosis above; sweep two or more batch sizes to see how it scales.`); return; }
    SW.filled(div);
    const groups = {};
    for (const e of d.edges) { const k = sliceLabel(e.slice); (groups[k] = groups[k] || []).push(e); }
    const traces = [];
    let gi = 0;
    const allB = [];
    for (const [key, es] of Object.entries(groups)) {
      const color = SW.SERIES[gi % SW.SERIES.length];
      es.sort((a, b) => a.batch_size - b.batch_size);
      const br = es.filter((e) => e.censored === null && e.edge);
      const name = "edge" + (key ? ` (${key})` : "");
      if (br.length) traces.push({
        type: "scatter", mode: "markers", name: `${name}: bracketed`, x: br.map((e) => e.batch_size), y: br.map((e) => e.edge),
        error_y: { type: "data", symmetric: false, array: br.map((e) => e.hi - e.edge), arrayminus: br.map((e) => e.edge - e.lo), width: 5 },
        marker: { color, size: 10, symbol: SW.SYMBOLS[gi % SW.SYMBOLS.length] },
        hovertemplate: "batch size %{x}: edge ≈ %{y:.3g}<extra></extra>", meta: { role: "edge" },
      });
      const up = es.filter((e) => e.censored === "above");
      if (up.length) traces.push({ type: "scatter", mode: "markers", name: `${name}: ≥ (all larger lr stable)`, x: up.map((e) => e.batch_size), y: up.map((e) => e.lo), marker: { color, size: 12, symbol: "triangle-up" }, hovertemplate: "batch size %{x}: edge ≥ %{y:.3g}<extra></extra>", meta: { role: "edge-censored" } });
      const down = es.filter((e) => e.censored === "below");
      if (down.length) traces.push({ type: "scatter", mode: "markers", name: `${name}: < (no lr stable)`, x: down.map((e) => e.batch_size), y: down.map((e) => e.hi), marker: { color, size: 12, symbol: "triangle-down-open", line: { width: 2 } }, hovertemplate: "batch size %{x}: edge < %{y:.3g}<extra></extra>", meta: { role: "edge-censored" } });
      es.forEach((e) => allB.push(e.batch_size));
      gi++;
    }
    const notes = [];
    for (const f of d.fits) {
      if (f.slope === null) continue;
      const ci = f.ci ? ` [95% CI ${SW.fmt(f.ci[0])}, ${SW.fmt(f.ci[1])}]` : "";
      const exp = f.expected !== null ? `; expected ≈ ${SW.fmt(f.expected)} for ${f.optimizer}` : "";
      const label = `fit: lr_max ∝ B^${SW.fmt(f.slope)}${ci}${exp}`;
      notes.push(label);
      if (f.intercept !== null && allB.length) {
        const b0 = Math.min(...allB), b1 = Math.max(...allB);
        const xs = [], ys = [];
        for (let k = 0; k <= 20; k++) { const b = b0 * Math.pow(b1 / b0, k / 20); xs.push(b); ys.push(Math.exp(f.intercept) * Math.pow(b, f.slope)); }
        traces.push({ type: "scatter", mode: "lines", name: label, x: xs, y: ys, line: { color: "#000000", width: 2, dash: "dash" }, hoverinfo: "skip", meta: { role: "fit" } });
      }
    }
    Plotly.react(div, traces, SW.layout({
      height: 420,
      title: { text: notes.length ? `Edge of stability versus batch size — ${notes.join("; ")}` : "Edge of stability versus batch size (too few bracketed edges to fit an exponent)", font: { size: 14 } },
      xaxis: { type: "log", title: { text: "batch size (examples per step, log scale)" }, exponentformat: "power" },
      yaxis: { type: "log", title: { text: "largest stable learning rate (unitless, log scale)" }, exponentformat: "power" },
    }), SW.config);
  }

  function drawReport(plotsData) {
    $("headline").textContent = plotsData.headline;
    $("report").innerHTML = plotsData.report_html;  // built server-side from escaped text
  }

  function dimsChanged(dims) {
    const key = JSON.stringify(dims);
    if (key === view.dimsKey) return false;
    view.dimsKey = key; view.dims = dims;
    return true;
  }

  async function refresh() {
    if (busy) { pending = true; return; }
    busy = true;
    try {
      const plotsData = await SW.getJSON(`${base}/plots`);
      if (dimsChanged(plotsData.dims)) buildControls();
      drawReport(plotsData);
      drawLossLr(plotsData);
      drawEdge(plotsData);
      drawFluctBatch(plotsData);
      await drawRegion();
      await drawFluct();
      await drawBeta();
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    } catch (e) {
      $("headline").textContent = `Could not load the analysis: ${e.message}`;
    } finally {
      busy = false;
      if (pending) { pending = false; refresh(); }
    }
  }

  function showProgress(p) {
    const bar = $("progress");
    bar.querySelector(".bar").style.width = `${p.runs_total ? (100 * p.runs_done) / p.runs_total : 0}%`;
    bar.querySelector(".label").textContent = `${p.runs_done} / ${p.runs_total} runs`;
    bar.setAttribute("aria-valuenow", p.runs_done);
    const c = p.configs;
    $("progress-text").textContent = `configurations: ${c.completed} done, ${c.running} running, ${c.waiting} waiting, ${c.failed} failed, ${c.cancelled} cancelled`;
    const st = $("state").querySelector(".state");
    st.textContent = p.state; st.className = `state state-${p.state}`;
  }

  async function poll() {
    try {
      const p = await SW.getJSON(`${base}/progress`);
      showProgress(p);
      const changed = p.runs_done !== runsDone || p.state !== state;
      runsDone = p.runs_done; state = p.state;
      if (changed) refresh();
    } catch (e) { /* a missed poll is retried */ }
    if (!TERMINAL.includes(state)) setTimeout(poll, 2000);
  }

  refresh();
  if (!TERMINAL.includes(state)) setTimeout(poll, 2000);
})();
