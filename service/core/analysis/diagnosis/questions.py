"""The three user reports' questions, each answered from the sweep's numbers (or told what is missing).

1. "Is it normal that my loss fluctuates, and why?" (``fluctuation``)
2. "Why does my training loss fall and then rise?" (``rises``)
3. "Why does the same setup sometimes stay at 50%?" (``seed_luck``)

Each ``Answer`` holds its sentence, the numbers behind it (``evidence``), the
configurations it rests on, and, when the sweep cannot answer, what to add to
the spec (``missing``). Pure: computed from the configuration points and the
fluctuation fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from service.core.analysis.diagnosis.sections import Answer
from service.core.analysis.fluctuation import MIN_EPOCHS, MIN_LATE_DIFFS
from service.core.analysis.fluctuation_scaling import FluctuationEffect, FluctuationFit, FluctuationSummary
from service.core.analysis.regions import ConfigPoint, sort_key
from service.core.analysis.seeds import Z95, quantile, wilson_interval
from service.core.analysis.thresholds import RISES_AFTER_MIN

QUESTIONS = {
    "fluctuation": "Is it normal that my loss fluctuates, and why?",
    "rises": "Why does my training loss fall and then rise?",
    "seed_luck": "Why does the same setup sometimes stay at 50%?",
}
# Dimensions whose effect on the rises-after-minimum region report 2 asks about.
RISE_DIMS = ("beta_1", "optimizer", "clipnorm", "schedule")
Z80 = 0.841621  # one-sided 80% power quantile, for the seeds needed to tell two rates apart


def fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------- 1. fluctuation


def fluctuation_answer(fl: FluctuationSummary, swept: Mapping[str, Sequence[Any]], lr_key: str) -> Answer:
    q = QUESTIONS["fluctuation"]
    if not fl.measured:
        return Answer(
            "fluctuation",
            q,
            "No run carries a fluctuation measure: the index needs at least "
            f"{MIN_LATE_DIFFS} epoch-to-epoch changes in the second half of training, so runs of fewer "
            f"than {MIN_EPOCHS} epochs have none (and runs trained before the service measured "
            "fluctuation carry none either).",
            missing=f"train for at least {MIN_EPOCHS} epochs (more give a steadier index)",
        )
    missing = [
        f"add {d} with at least two values to space"
        for d in ("batch_size", lr_key)
        if len(swept.get(d, ())) < 2
    ]
    parts = []
    # Per batch size when it was swept, else per learning rate (else the one value there is).
    by_batch = len(fl.jump_by_batch) >= 2 or len(fl.jump_by_lr) < 2
    jumps = fl.jump_by_batch if by_batch else fl.jump_by_lr
    if jumps:
        dim = "batch size" if by_batch else lr_key
        parts.append(
            "Between epochs the full-set loss jumps by a factor of about "
            + ", ".join(f"{j:.2g}x at {dim} {fmt(v)}" for v, j in jumps.items())
            + " (9 in 10 epoch-to-epoch changes are within it)."
        )
    top = fl.effects[0] if fl.effects else None
    remedy = None
    if top is not None:
        parts.append(_effect_sentence(top, fl.fits, lr_key))
        remedy = _remedy(top, fl.fits, lr_key)
    if fl.running_ratio is not None:
        parts.append(
            f"The running-mean loss Keras displays fluctuates {fl.running_ratio:.2g}x as much as the "
            "full-set loss (median over stable runs): "
            + (
                "the display smooths the jumps; the model's loss itself wobbles."
                if fl.running_ratio < 1
                else "much of what the display shows is mini-batch averaging, not the model."
            )
        )
    if remedy:
        parts.append(remedy)
    return Answer(
        "fluctuation",
        q,
        " ".join(parts) or "Too few stable runs with a measured fluctuation to say.",
        evidence={
            "jump_by_batch_size": [[k, v] for k, v in fl.jump_by_batch.items()],
            "effects": [e.to_dict() for e in fl.effects],
            "running_ratio": fl.running_ratio,
        },
        config_ids=fl.config_ids,
        missing="; ".join(missing) or None,
    )


def _effect_sentence(top: FluctuationEffect, fits: Sequence[FluctuationFit], lr_key: str) -> str:
    dim = "batch size" if top.dim == "batch_size" else top.dim
    moves = "falls" if top.change < 1 else "grows"
    text = (
        f"{dim[0].upper() + dim[1:]} moves fluctuation most: it {moves} {top.fold:.2g}x from "
        f"{dim} {fmt(top.lo)} to {fmt(top.hi)}"
    )
    own = [f for f in fits if f.along == top.dim and f.slope is not None]
    if top.slope is not None and own:
        cis = [f.ci for f in own if f.ci is not None]
        ci = f" (95% interval {cis[0][0]:.2f} to {cis[0][1]:.2f} at {_group(own[0].group)})" if cis else ""
        text += f", exponent {top.slope:.2f}{ci}"
    if top.dim == "batch_size":
        text += (
            "; mini-batch gradient noise predicts about -0.5. Loss that wobbles more at smaller batches is "
            "the normal noise of mini-batch training, not instability."
            if top.change < 1
            else "; it grows with batch size, which mini-batch noise does not explain."
        )
    elif top.dim == lr_key:
        text += (
            f"; growing with the {lr_key} is the optimiser nearing its stability edge."
            if top.change > 1
            else "."
        )
    else:
        text += "."
    return text


def _remedy(top: FluctuationEffect, fits: Sequence[FluctuationFit], lr_key: str) -> str | None:
    if top.slope is None:
        return None
    if top.dim == "batch_size" and top.change < 1:
        lo, hi = top.lo, top.hi
        factor = (hi / lo) ** top.slope
        return (
            f"Remedy the data supports: a larger batch. The fit predicts going from batch {fmt(lo)} to "
            f"{fmt(hi)} cuts the fluctuation to {factor:.2g} of its size ({1 / factor:.2g}x less); a "
            f"lower or decaying {lr_key} also quiets it."
        )
    if top.dim == lr_key and top.change > 1:
        factor = (top.lo / top.hi) ** top.slope
        return (
            f"Remedy the data supports: a lower or decaying {lr_key}. The fit predicts going from "
            f"{fmt(top.hi)} to {fmt(top.lo)} cuts the fluctuation to {factor:.2g} of its size."
        )
    return None


def _group(g: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(g.items())) or "all"


# ----------------------------------------------------------------- 2. rises after the minimum


def rises_answer(pts: Sequence[ConfigPoint], swept: Mapping[str, Sequence[Any]], lr_key: str) -> Answer:
    q = QUESTIONS["rises"]
    total = sum(p.summary.n for p in pts)
    rising = [p for p in pts if p.summary.class_counts.get(RISES_AFTER_MIN, 0)]
    n_rise = sum(p.summary.class_counts.get(RISES_AFTER_MIN, 0) for p in rising)
    compare = [d for d in RISE_DIMS if len(swept.get(d, ())) > 1]
    missing = []
    if "beta_1" not in compare:
        missing.append("add beta_1: [0.5, 0.9] to space to see whether beta_1 moves the rise")
    if "clipnorm" not in compare and "schedule" not in compare:
        missing.append(
            "add clipnorm (e.g. [1.0]) or a decaying schedule to space to see whether they move it"
        )
    if not rising:
        lrs = swept.get(lr_key, ())
        more = f"; try larger {lr_key} than {fmt(max(lrs))}" if lrs else ""
        return Answer(
            "rises",
            q,
            f"No run rose after its minimum here (0 of {total} runs): the loss did not fall and then rise "
            f"at any setting tried{more}.",
            evidence={"rises_runs": 0, "runs": total},
            missing="; ".join(missing) or None,
        )
    thresholds = _rise_thresholds(pts, lr_key)
    parts = [
        f"{n_rise} of {total} runs rose after their minimum ({100 * n_rise / total:.0f}%). "
        "It appears from "
        + "; ".join(f"{lr_key} {fmt(t['threshold_lr'])} at {_group(t['group'])}" for t in thresholds[:6])
        + ": a learning rate too high for late training, the playbook's sign of optimisation instability."
    ]
    by_dim: dict[str, list[dict[str, Any]]] = {}
    for d in compare:
        rows = _rise_by_value(pts, d)
        by_dim[d] = rows
        parts.append(
            f"By {d}: "
            + ", ".join(f"{fmt(r['value'])}: {r['rises']}/{r['runs']} runs rise" for r in rows)
            + "."
        )
    return Answer(
        "rises",
        q,
        " ".join(parts),
        evidence={"rises_runs": n_rise, "runs": total, "thresholds": thresholds, "by_dimension": by_dim},
        config_ids=tuple(sorted(p.config_id for p in rising)),
        missing="; ".join(missing) or None,
    )


def _rise_thresholds(pts: Sequence[ConfigPoint], lr_key: str) -> list[dict[str, Any]]:
    groups: dict[tuple[tuple[str, str], ...], tuple[dict[str, Any], list[ConfigPoint]]] = {}
    for p in pts:
        if lr_key not in p.params:
            continue
        rest = {k: v for k, v in p.params.items() if k != lr_key}
        groups.setdefault(tuple(sorted((k, repr(v)) for k, v in rest.items())), (rest, []))[1].append(p)
    out = []
    for rest, members in groups.values():
        hits = [p.params[lr_key] for p in members if p.summary.class_counts.get(RISES_AFTER_MIN, 0)]
        if hits:
            out.append({"group": rest, "threshold_lr": min(hits)})
    return sorted(out, key=lambda t: [sort_key(v) for v in t["group"].values()])


def _rise_by_value(pts: Sequence[ConfigPoint], dim: str) -> list[dict[str, Any]]:
    acc: dict[Any, list[int]] = {}
    for p in pts:
        if dim in p.params:
            a = acc.setdefault(p.params[dim], [0, 0])
            a[0] += p.summary.class_counts.get(RISES_AFTER_MIN, 0)
            a[1] += p.summary.n
    return [
        {"value": v, "rises": a[0], "runs": a[1]}
        for v, a in sorted(acc.items(), key=lambda kv: sort_key(kv[0]))
    ]


# ----------------------------------------------------------------- 3. seed luck


def seeds_needed(p1: float, p2: float, *, z_alpha: float = Z95, z_beta: float = Z80) -> int | None:
    """Seeds per configuration to tell success rates p1 and p2 apart (two-sided 5%, power 80%).

    The normal-approximation sample size for two proportions (Fleiss, Levin &
    Paik 2003, eq. 4.14, without continuity correction). None when p1 == p2.
    """
    if p1 == p2:
        return None
    pbar = (p1 + p2) / 2
    num = z_alpha * math.sqrt(2 * pbar * (1 - pbar)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil((num / (p1 - p2)) ** 2)


def seed_answer(pts: Sequence[ConfigPoint], components: Mapping[str, float | None] | None) -> Answer:
    q = QUESTIONS["seed_luck"]
    if not pts:
        return Answer("seed_luck", q, "No finished runs yet.")
    seeds = sorted(p.summary.n for p in pts)
    per = int(quantile([float(s) for s in seeds], 0.5))
    mixed = [p for p in pts if 0 < p.summary.successes < p.summary.n]
    missing = []
    if per < 5:
        missing.append(f"more seeds (you have {per} per configuration; 8-10 make a 50% rate visible)")
    init, data = (components or {}).get("init"), (components or {}).get("data")
    if init is None or data is None:
        missing.append("crossed seeds (seeds: {init: 3, data: 3}) to separate init luck from data-order luck")
    if not mixed:
        return Answer(
            "seed_luck",
            q,
            f"No configuration had both stable and failed seeds ({len(pts)} configurations, "
            f"{per} seeds each): "
            "every setting either trained or failed on all its seeds.",
            evidence={"mixed_configs": 0, "seeds_per_config": per},
            missing="; ".join(missing) or None,
        )
    best = max(pts, key=lambda p: (p.summary.success_rate or 0.0, p.summary.n))
    worst = min(mixed, key=lambda p: abs((p.summary.success_rate or 0.0) - 0.5))
    s = worst.summary
    lo, hi = wilson_interval(s.successes, s.n)
    rate_b = best.summary.success_rate or 0.0
    need = seeds_needed(s.success_rate or 0.0, rate_b)
    text = (
        f"{len(mixed)} of {len(pts)} configurations have both stable and failed seeds. The most mixed, "
        f"{_params(worst.params)}, trained stably on {s.successes} of {s.n} seeds "
        f"(success {100 * (s.success_rate or 0):.0f}%, "
        f"95% Wilson interval {100 * lo:.0f}% to {100 * hi:.0f}%)."
    )
    if init is not None and data is not None:
        which = "initial weights" if init > data else "data order"
        text += (
            f" The init seed explains {100 * init:.0f}% of the outcome variance and the data-order seed "
            f"{100 * data:.0f}%: the luck is mostly in the {which}."
        )
    if need is not None and best.config_id != worst.config_id:
        text += (
            f" Telling it apart from {_params(best.params)} ({100 * rate_b:.0f}%) at these rates needs about "
            f"{need} seeds each (5% test, 80% power); you have {s.n}."
        )
    return Answer(
        "seed_luck",
        q,
        text,
        evidence={
            "mixed_configs": len(mixed),
            "seeds_per_config": per,
            "most_mixed": {
                "config_id": worst.config_id,
                "successes": s.successes,
                "n": s.n,
                "wilson": [lo, hi],
            },
            "compared_with": {"config_id": best.config_id, "success_rate": rate_b},
            "seeds_needed": need,
            "seed_components": {"init": init, "data": data},
        },
        config_ids=tuple(sorted({worst.config_id, best.config_id})),
        missing="; ".join(missing) or None,
    )


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(params.items(), key=lambda kv: kv[0]))
