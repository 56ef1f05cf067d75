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
  drawSharpness(SW.data.sharpness);
  document.body.dataset.renders = "1";

  // The sharpness band over seeds against the median threshold (docs/sharpness.md).
  function drawSharpness(S) {
    if (!S) return;
    const b = S.band, x = b.epochs, key = S.compared;
    const label = key === "preconditioned_sharpness" ? "preconditioned sharpness" : "sharpness";
    const traces = [];
    if (b[key].median.some((v) => v !== null)) {
      traces.push({ type: "scatter", mode: "lines", x, y: b[key].q25, line: { width: 0 }, hoverinfo: "skip", showlegend: false, connectgaps: true });
      traces.push({ type: "scatter", mode: "lines", x, y: b[key].q75, fill: "tonexty", fillcolor: "rgba(213,94,0,0.2)", line: { width: 0 }, name: `interquartile band (${b.n_stable} stable seeds)`, hoverinfo: "skip", connectgaps: true });
      traces.push({ type: "scatter", mode: "lines+markers", x, y: b[key].median, line: { color: "#D55E00", width: 3 }, marker: { size: 4 }, name: `median ${label}`, hovertemplate: `epoch %{x}: median ${label} %{y:.4g}<extra></extra>`, connectgaps: true });
    }
    traces.push({ type: "scatter", mode: "lines", x, y: b.stability_threshold.median, line: { color: "#000000", width: 2, dash: "dash" }, name: "stability threshold (median)", hovertemplate: "epoch %{x}: threshold %{y:.4g}<extra></extra>", connectgaps: true });
    const shown = {};
    for (const f of S.failed) {
      traces.push({ type: "scatter", mode: "lines+markers", x: f.epochs, y: f.value, line: { color: SW.clsColor(f.run_class), width: 2, dash: DASH[f.run_class] || "solid" }, marker: { size: 5, color: SW.clsColor(f.run_class) }, name: `failed seed: ${SW.clsLabel(f.run_class)}`, legendgroup: f.run_class, showlegend: !shown[f.run_class], hovertemplate: `seed ${f.seed}: epoch %{x}, ${label} %{y:.4g}<extra></extra>` });
      shown[f.run_class] = true;
    }
    Plotly.newPlot("band-sharpness", traces, SW.layout({
      height: 430,
      title: { text: `The ${label} over epochs, against its threshold`, font: { size: 14 } },
      xaxis: { title: { text: "epoch (passes over the training set)" } },
      yaxis: { title: { text: `${label} (log scale)` }, type: "log", exponentformat: "power" },
      legend: { orientation: "h", y: -0.3, x: 0 },
    }), SW.config);
  }
})();
