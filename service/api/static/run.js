/* The run page: per-epoch curves, learning rate and gradient norm, sharpness, and per-step losses. */
"use strict";
(() => {
  const C = SW.data.curves, E = C.epoch;
  const color = SW.clsColor(SW.data.run_class);
  const has = (k) => E[k] && E[k].some((v) => v !== null);
  const line = (k, name, c, dash, extra) => Object.assign({ type: "scatter", mode: "lines+markers", x: E.epoch, y: E[k], name, line: { color: c, width: 2, dash: dash || "solid" }, marker: { size: 4 }, hovertemplate: `${name}: epoch %{x}, %{y:.4g}<extra></extra>` }, extra || {});
  const xaxis = { title: { text: "epoch (passes over the training set; 0 = initialisation)" } };
  const opts = { height: 400, legend: { orientation: "h", y: -0.28, x: 0 } };

  const loss = [];
  if (has("loss")) loss.push(line("loss", "training loss (full set)", "#0072B2"));
  if (has("running_loss")) loss.push(line("running_loss", "running mean over mini-batches", "#E69F00", "dash"));
  if (has("val_loss")) loss.push(line("val_loss", "validation loss", "#009E73", "dot"));
  const positive = loss.every((t) => t.y.every((v) => v === null || v > 0));
  Plotly.newPlot("run-loss", loss, SW.layout(Object.assign({}, opts, {
    title: { text: `Loss — class: ${SW.clsLabel(SW.data.run_class)}`, font: { size: 14, color } },
    xaxis, yaxis: Object.assign({ title: { text: `loss (${SW.data.loss_unit}${positive ? ", log scale" : ""})` } }, positive ? { type: "log", exponentformat: "power" } : {}),
  })), SW.config);

  const acc = [];
  if (has("accuracy")) acc.push(line("accuracy", "training accuracy (full set)", "#0072B2"));
  if (has("val_accuracy")) acc.push(line("val_accuracy", "validation accuracy", "#009E73", "dot"));
  if (acc.length) Plotly.newPlot("run-accuracy", acc, SW.layout(Object.assign({}, opts, { title: { text: "Accuracy", font: { size: 14 } }, xaxis, yaxis: { title: { text: "accuracy (fraction of examples)" }, rangemode: "tozero" } })), SW.config);
  else SW.empty(document.getElementById("run-accuracy"), "This workload records no accuracy (regression).");

  const lr = [];
  if (has("learning_rate")) lr.push(line("learning_rate", "learning rate in effect", "#CC79A7"));
  if (has("grad_norm")) lr.push(line("grad_norm", "global gradient norm", "#000000", "dash", { yaxis: "y2" }));
  if (lr.length) Plotly.newPlot("run-lr", lr, SW.layout(Object.assign({}, opts, {
    title: { text: "Learning rate and gradient norm", font: { size: 14 } }, xaxis,
    yaxis: { title: { text: "learning rate (unitless, log scale)" }, type: "log", exponentformat: "power" },
    yaxis2: { title: { text: "gradient norm (L2 norm of all gradients)" }, overlaying: "y", side: "right", rangemode: "tozero", showgrid: false },
    margin: { l: 80, r: 80, t: 40, b: 70 },
  })), SW.config);
  else SW.empty(document.getElementById("run-lr"), "No learning rate or gradient norm recorded.");

  // Sharpness and its threshold on a log axis, the loss beside them on the right: a loss spike
  // follows the sharpness crossing the threshold (docs/sharpness.md).
  const S = SW.data.sharpness;
  if (S) {
    const sl = (k, name, c, dash, extra) => Object.assign({ type: "scatter", mode: "lines+markers", x: S.epoch, y: S[k], name, line: { color: c, width: 2, dash: dash || "solid" }, marker: { size: 4 }, hovertemplate: `${name}: epoch %{x}, %{y:.4g}<extra></extra>` }, extra || {});
    const pre = S.compared === "preconditioned_sharpness";
    const traces = [sl("sharpness", "sharpness (top Hessian eigenvalue)", "#D55E00", pre ? "dot" : "solid")];
    if (pre) traces.push(sl("preconditioned_sharpness", "preconditioned sharpness (P⁻¹H)", "#D55E00"));
    traces.push(sl("stability_threshold", pre ? "threshold of the preconditioned sharpness" : "threshold (2/lr for GD)", "#000000", "dash"));
    if (has("loss")) traces.push(line("loss", "training loss (right axis)", "#0072B2", "solid", { yaxis: "y2", opacity: 0.45, marker: { size: 2 } }));
    Plotly.newPlot("run-sharpness", traces, SW.layout(Object.assign({}, opts, {
      title: { text: "Sharpness against its stability threshold, beside the loss", font: { size: 14 } }, xaxis,
      yaxis: { title: { text: "eigenvalue (1/lr units, log scale)" }, type: "log", exponentformat: "power" },
      yaxis2: { title: { text: `loss (${SW.data.loss_unit}, log scale)` }, overlaying: "y", side: "right", type: "log", exponentformat: "power", showgrid: false },
      margin: { l: 80, r: 80, t: 40, b: 70 },
    })), SW.config);
  } else {
    document.getElementById("run-sharpness").hidden = true;
    document.getElementById("no-sharpness").hidden = false;
  }

  if (C.steps && C.steps.step.length) {
    const s = C.steps;
    Plotly.newPlot("run-steps", [{ type: "scatter", mode: "lines", x: s.step, y: s.loss, name: "mini-batch loss", line: { color: "#0072B2", width: 1 }, hovertemplate: "step %{x}: %{y:.4g}<extra></extra>" }], SW.layout(Object.assign({}, opts, {
      title: { text: `Mini-batch loss per step${s.n > s.step.length ? ` (${s.step.length} of ${s.n} recorded steps shown)` : ""}`, font: { size: 14 } },
      xaxis: { title: { text: "optimizer step (mini-batches)" } },
      yaxis: { title: { text: `mini-batch loss (${SW.data.loss_unit}, log scale)` }, type: "log", exponentformat: "power" },
      showlegend: false,
    })), SW.config);
  } else {
    document.getElementById("run-steps").hidden = true;
    document.getElementById("no-steps").hidden = false;
  }
  document.body.dataset.renders = "1";
})();
