"""Server-rendered pages: the Jinja2 environment (autoescape on), its filters, and how the
dashboard names and draws things (run-class colours, loss units)."""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from service.core.analysis import FAILURE_CLASSES, RUN_CLASSES
from service.core.records import SweepRecord
from service.core.workloads import PRESETS

_TEMPLATES = Path(__file__).resolve().parent / "templates"

# Okabe & Ito (2008) colours, one per run class, and a marker shape each so
# that nothing depends on colour alone.
CLASS_STYLE: dict[str, dict[str, str]] = {
    "diverged": {"color": "#D55E00", "symbol": "x", "label": "diverged"},
    "rises_after_min": {"color": "#E69F00", "symbol": "triangle-up", "label": "rises after its minimum"},
    "stuck_at_chance": {"color": "#CC79A7", "symbol": "square", "label": "stuck at chance"},
    "noisy": {"color": "#56B4E9", "symbol": "diamond", "label": "noisy"},
    "slow": {"color": "#0072B2", "symbol": "circle-open", "label": "slow"},
    "converged": {"color": "#009E73", "symbol": "circle", "label": "converged"},
}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["when"] = _when
    env.globals["CLASS_STYLE"] = CLASS_STYLE
    env.globals["FAILURE_CLASSES"] = FAILURE_CLASSES
    env.globals["RUN_CLASSES"] = RUN_CLASSES
    return env


# ----------------------------------------------------------------- filters


def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if v != v or v in (float("inf"), float("-inf")):
        return "non-finite"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.{max(digits - 1, 0)}e}"
    return f"{v:.{digits}g}"


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.0f}%"


def _when(v: datetime | None) -> str:
    return "—" if v is None else v.strftime("%Y-%m-%d %H:%M UTC")


_MD_INLINE = re.compile(r"\*\*(.+?)\*\*|`(.+?)`")


def _inline(text: str) -> str:
    out, pos = [], 0
    for m in _MD_INLINE.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        out.append(
            f"<strong>{html.escape(m.group(1))}</strong>"
            if m.group(1)
            else f"<code>{html.escape(m.group(2))}</code>"
        )
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def markdown_html(md: str) -> Markup:
    """The small Markdown subset of ``report_to_markdown`` (headings, bullets, bold, code) as HTML.

    Every piece of text is escaped before tags are added, so a sweep name or
    a parameter value cannot inject markup.
    """
    parts: list[str] = []
    in_list = False
    for line in md.splitlines():
        if line.startswith("- "):
            if not in_list:
                parts.append("<ul>")
                in_list = True
            parts.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if in_list:
            parts.append("</ul>")
            in_list = False
        if line.startswith("## "):
            parts.append(f"<h3>{_inline(line[3:])}</h3>")
        elif line.startswith("# "):
            continue  # the page has its own heading
        elif line.strip():
            parts.append(f"<p>{_inline(line)}</p>")
    if in_list:
        parts.append("</ul>")
    return Markup("\n".join(parts))  # noqa: S704 - built from escaped pieces above


templates = Jinja2Templates(env=_environment())


def render_page(request: Request, name: str, context: dict[str, Any]) -> Response:
    return templates.TemplateResponse(request, name, context)


def render_error(request: Request, status: int, message: str) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "message": message, "title": f"Error {status}"},
        status_code=status,
    )


# ----------------------------------------------------------------- units


def _preset_loss(sweep: SweepRecord) -> str | None:
    """The loss of the sweep's preset workload (None for uploaded and entry-point workloads)."""
    preset = sweep.spec.get("workload", {}).get("preset")
    if not preset:
        return None
    info = PRESETS.get(preset)
    return info.loss if info is not None else None


def loss_unit(sweep: SweepRecord) -> str:
    """What the loss axis measures: squared error for an MSE workload, nats otherwise."""
    return "squared error" if _preset_loss(sweep) == "mse" else "nats"
