/* The configuration page: seed band (median, IQR) of stable seeds, failed seeds apart. */
"use strict";
(() => {
  const B = SW.data.band;
  const DASH = { diverged: "solid", rises_after_min: "dash", stuck_at_chance: "dot" };
  const META = {
    loss: { div: "band-loss", title: "Training loss over epochs", y: `training loss, full set (${SW.data.loss_unit}, log scale)`, log: true },
    accuracy: { div: "band-accuracy", title: "Training accuracy over epochs", y: "training accuracy (fraction of examples)", log: false },
  };
  for (const [metric, m] of Object.entries(META)) {
    const div = document.getElementById(m.div);
    const band = B.band[metric];
    const x = B.band.epochs;
    const traces = [];
    const hasBand = band.median.some((v) => v !== null);
    if (hasBand) {
      traces.push({ type: "scatter", mode: "lines", x, y: band.q25, line: { width: 0 }, hoverinfo: "skip", showlegend: false, meta: { role: "band-low" } });
      traces.push({ type: "scatter", mode: "lines", x, y: band.q75, fill: "tonexty", fillcolor: "rgba(0,114,178,0.22)", line: { width: 0 }, name: `interquartile band (${B.band.n_stable} stable seeds)`, hoverinfo: "skip", meta: { role: "band" } });
    }
    B.stable.forEach((s, i) => traces.push({
      type: "scatter", mode: "lines", x: s.epochs, y: s[metric], line: { color: "rgba(90,90,90,0.45)", width: 1 },
      name: "each stable seed", legendgroup: "stable", showlegend: i === 0,
      hovertemplate: `seed ${s.seed} (${SW.clsLabel(s.run_class)}): epoch %{x}, %{y:.4g}<extra></extra>`, meta: { role: "seed", run_id: s.run_id },
    }));
    if (hasBand) traces.push({ type: "scatter", mode: "lines", x, y: band.median, line: { color: "#0072B2", width: 3 }, name: "median of stable seeds", hovertemplate: "epoch %{x}: median %{y:.4g}<extra></extra>", meta: { role: "median" } });
    // Beside the full-set loss, the running mean Keras displays: how much of the jumping is averaging.
    const running = metric === "loss" && B.band.running_loss;
    if (hasBand && running && running.median.some((v) => v !== null)) traces.push({ type: "scatter", mode: "lines", x, y: running.median, line: { color: "#E69F00", width: 2.5, dash: "dash" }, name: "median running-mean loss (what Keras displays)", hovertemplate: "epoch %{x}: running mean %{y:.4g}<extra></extra>", meta: { role: "running-median" } });
    const shown = {};
    for (const f of B.failed) {
      traces.push({
        type: "scatter", mode: "lines+markers", x: f.epochs, y: f[metric],
        line: { color: SW.clsColor(f.run_class), width: 2.2, dash: DASH[f.run_class] || "solid" },
        marker: { symbol: SW.clsSymbol(f.run_class), size: 6, color: SW.clsColor(f.run_class), maxdisplayed: 12 },
        name: `failed seed: ${SW.clsLabel(f.run_class)}`, legendgroup: f.run_class, showlegend: !shown[f.run_class],
        hovertemplate: `seed ${f.seed} (${SW.clsLabel(f.run_class)}): epoch %{x}, %{y:.4g}<extra></extra>`, meta: { role: "failed", run_id: f.run_id },
      });
      shown[f.run_class] = true;
    }
    if (!traces.length) { SW.empty(div, "No finished seeds yet."); continue; }
    const more = B.n_failed > B.failed.length ? ` (${B.failed.length} of ${B.n_failed} failed seeds drawn)` : "";
    Plotly.newPlot(div, traces, SW.layout({
      height: 430,
      title: { text: m.title + more, font: { size: 14 } },
      xaxis: { title: { text: "epoch (passes over the training set)" } },
      yaxis: Object.assign({ title: { text: m.y } }, m.log ? { type: "log", exponentformat: "power" } : { rangemode: "tozero" }),
      legend: { orientation: "h", y: -0.3, x: 0 },
    }), SW.config);
  }
  document.body.dataset.renders = "1";
})();
