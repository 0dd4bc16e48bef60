"""Rendering a ``ComparisonTable``: Markdown, LaTeX (booktabs) and CSV.

Every format shows the caption, one row per env with the best mean per row marked, the
normalised IQM row and (Markdown and LaTeX) the notes.
"""

from __future__ import annotations

import csv
import io
import math
import re

from cocoa.report.runs import METRIC_LABELS, fmt_steps, reward_text
from cocoa.report.tables import Cell, ComparisonTable

MISSING = "—"


def _num(x: float, metric: str) -> str:
    if math.isnan(x):
        return "nan"
    if metric == "success":
        return f"{x:.2f}"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.2f}"


def _cell_parts(cell: Cell, table: ComparisonTable, aggregate: bool = False) -> tuple[str, str]:
    """(mean text, interval + seed-count text)."""
    metric = "success" if aggregate else table.metric
    mean = _num(cell.mean, metric)
    extra = ""
    if not math.isnan(cell.low):
        extra = f"[{_num(cell.low, metric)}, {_num(cell.high, metric)}]"
    if not aggregate and cell.n < table.n_expected:
        extra = (extra + " " if extra else "") + f"(n={cell.n}/{table.n_expected})"
    return mean, extra


def _header(table: ComparisonTable) -> list[tuple[str, str | None]]:
    """(header text, column key or None for a reference column) in display order."""
    out: list[tuple[str, str | None]] = []
    for key in table.columns:
        out.append((table.labels[key], key))
        if key in table.reference:
            out.append((f"{table.labels[key].split(' (')[0]} (thesis)", "ref:" + key))
    for a, b in dict.fromkeys((r.a, r.b) for r in table.rankings):
        head = f"{table.labels[a]} vs {table.labels[b]}: winner here / thesis"
        out.append((head, f"rank:{a}|{b}"))
    return out


def _single(key: str) -> bool:
    """Whether a header key is a one-field column (published value or ranking)."""
    return key.startswith(("ref:", "rank:"))


def _ranking_text(table: ComparisonTable, env: str, key: str) -> str:
    """``CoCOA / PEARL``: the higher mean here / in the thesis; empty for envs not ranked."""
    a, _, b = key[len("rank:") :].partition("|")

    def name(winner: str | None) -> str:
        return MISSING if winner is None else table.labels.get(winner, winner)

    for r in table.rankings:
        if (r.env, r.a, r.b) == (env, a, b):
            return f"{name(r.ours)} / {name(r.thesis)}"
    return ""


def caption(table: ComparisonTable) -> str:
    """One-line description of what the cells hold."""
    seeds = f"{table.n_expected} seed" + ("s" if table.n_expected != 1 else "")
    at = (
        f"{fmt_steps(table.budget)} env steps"
        if table.budget is not None
        else "each env's budget (see notes)"
    )
    rewards = reward_text(table.reward_versions)
    return (
        f"{METRIC_LABELS[table.metric].capitalize()} at {at}"
        + (f", {rewards}" if rewards else "")
        + f": mean [95% bootstrap CI] across seeds ({seeds}); best (unrounded) mean per row "
        "in bold."
    )


def render_markdown(table: ComparisonTable) -> str:
    """GitHub Markdown: caption line, table (best in bold), aggregate row, notes."""
    header = _header(table)
    lines = [caption(table), ""]
    lines.append("| environment | " + " | ".join(h for h, _ in header) + " |")
    lines.append("|---|" + "---:|" * len(header))

    def row(name: str, getter) -> str:
        return f"| {name} | " + " | ".join(getter(key) for _, key in header) + " |"

    def cell_text(env: str, key: str | None) -> str:
        if key.startswith("rank:"):
            return _ranking_text(table, env, key)
        if key.startswith("ref:"):
            value = table.reference[key[4:]].get(env)
            return MISSING if value is None else _num(value, table.metric)
        cell = table.cells.get((env, key))
        if cell is None:
            return MISSING
        mean, extra = _cell_parts(cell, table)
        mean = f"**{mean}**" if cell.best else mean
        return f"{mean} {extra}".strip()

    for env in table.envs:
        lines.append(row(env, lambda key, env=env: cell_text(env, key)))
    if table.aggregate:

        def agg_text(key: str) -> str:
            cell = table.aggregate.get(key) if not _single(key) else None
            if cell is None:
                return ""
            mean, extra = _cell_parts(cell, table, aggregate=True)
            return f"{'**' + mean + '**' if cell.best else mean} {extra}".strip()

        lines.append(row("IQM (normalised)", agg_text))
    lines.append("")
    lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    return re.sub(r"([&%$#_{}])", r"\\\1", text).replace("—", "---")


def render_latex(table: ComparisonTable) -> str:
    """A booktabs ``table``: best in bold, intervals in small type, notes as comments."""
    header = _header(table)

    def cell_text(env: str, key: str) -> str:
        if key.startswith("rank:"):
            return _latex_escape(_ranking_text(table, env, key))
        if key.startswith("ref:"):
            value = table.reference[key[4:]].get(env)
            return "---" if value is None else _num(value, table.metric)
        cell = table.cells.get((env, key))
        if cell is None:
            return "---"
        mean, extra = _cell_parts(cell, table)
        mean = f"\\textbf{{{mean}}}" if cell.best else mean
        return f"{mean} {{\\scriptsize {extra}}}" if extra else mean

    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\begin{tabular}{l" + "r" * len(header) + "}",
        "\\toprule",
        "Environment & " + " & ".join(_latex_escape(h) for h, _ in header) + " \\\\",
        "\\midrule",
    ]
    for env in table.envs:
        lines.append(
            _latex_escape(env) + " & " + " & ".join(cell_text(env, k) for _, k in header) + r" \\"
        )
    if table.aggregate:
        parts = []
        for _, key in header:
            cell = table.aggregate.get(key)
            if cell is None:
                parts.append("")
                continue
            mean, extra = _cell_parts(cell, table, aggregate=True)
            mean = f"\\textbf{{{mean}}}" if cell.best else mean
            parts.append(f"{mean} {{\\scriptsize {extra}}}" if extra else mean)
        lines += ["\\midrule", "IQM (normalised) & " + " & ".join(parts) + r" \\"]
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{_latex_escape(caption(table))}}}",
        "\\end{table}",
    ]
    lines += [f"% {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def render_csv(table: ComparisonTable) -> str:
    """One row per env (plus ``IQM (normalised)``): per column ``mean``, ``ci_low``,
    ``ci_high``, ``n`` and ``best`` (``*`` when best in the row); reference columns hold the
    published value. Empty fields: no data. Notes are not part of the CSV."""
    header = _header(table)
    fields = ["env"]
    for head, key in header:
        if _single(key):
            fields.append(head)
        else:
            fields += [f"{head} {s}" for s in ("mean", "ci_low", "ci_high", "n", "best")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)

    def num(x: float) -> str:
        return "" if math.isnan(x) else repr(float(x))

    def values(cell: Cell | None) -> list[str]:
        if cell is None:
            return ["", "", "", "", ""]
        return [num(cell.mean), num(cell.low), num(cell.high), str(cell.n), "*" * cell.best]

    for env in table.envs:
        row = [env]
        for _, key in header:
            if key.startswith("rank:"):
                row.append(_ranking_text(table, env, key))
            elif key.startswith("ref:"):
                value = table.reference[key[4:]].get(env)
                row.append("" if value is None else repr(value))
            else:
                row += values(table.cells.get((env, key)))
        writer.writerow(row)
    if table.aggregate:
        row = ["IQM (normalised)"]
        for _, key in header:
            row += [""] if _single(key) else values(table.aggregate.get(key))
        writer.writerow(row)
    return buf.getvalue()


def render(table: ComparisonTable, fmt: str) -> str:
    """``markdown``, ``latex`` or ``csv``."""
    renderers = {"markdown": render_markdown, "latex": render_latex, "csv": render_csv}
    if fmt not in renderers:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(renderers)}")
    return renderers[fmt](table)
