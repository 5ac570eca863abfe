"""Human-readable views of a plan: the summary and the table of first, last and changing frames."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .plan import Plan

MAX_TEXT = 48


def _short(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, bool):
        text = "yes" if value else "-"
    else:
        text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def summary_lines(plan: Plan) -> list[str]:
    s = plan.settings
    diffusions = int(plan.diffused.sum())
    lines = [
        f"mode {plan.mode}, {plan.frame_count} {'images' if plan.mode == 'None' else 'frames'}, "
        f"{diffusions} diffusions, {s.W}x{s.H}, seed {plan.seed} ({s.seed_behavior}), "
        f"sampler {s.sampler}, {s.steps} steps, scale {s.scale}, model {s.model}",
    ]
    if plan.mode not in ("None", "Interpolation"):
        moving = plan.changing_schedules()
        lines.append("changing schedules: " + (", ".join(moving) if moving else "none"))
        lines.append(f"prompts: {len(plan.positive.texts)} positive, {len(plan.negative.texts)} negative; "
                     f"cadence {1 if plan.mode == 'Video Input' else s.diffusion_cadence}")
    lines.extend(plan.notes)
    return lines


def change_points(plan: Plan) -> np.ndarray:
    """Frames where some value differs from the frame before (vectorised: plans can be long)."""
    n = plan.frame_count
    changed = np.zeros(n, dtype=bool)
    series = [*plan.schedules.values(), plan.positive.index, plan.negative.index, plan.steps]
    if plan.mode == "None":
        series.append(plan.seeds)
    for values in series:
        values = np.asarray(values)
        changed[1:] |= values[1:] != values[:-1]
    if len(set(plan.sampler[:1])) and plan.sampler.count(plan.sampler[0]) != n:
        codes = np.unique(np.asarray(plan.sampler), return_inverse=True)[1]
        changed[1:] |= codes[1:] != codes[:-1]
    return changed


def rows_to_show(plan: Plan, every_row: bool) -> list[int]:
    """The first and last frames and every frame where some value changes."""
    if every_row or plan.frame_count <= 12:
        return list(range(plan.frame_count))
    changed = change_points(plan)
    changed[0] = changed[-1] = True
    return [int(f) for f in np.flatnonzero(changed)]


def constant_columns(plan: Plan, columns: list[str]) -> dict[str, Any]:
    """Columns whose value never changes over the run, with that value (shown once, not per row)."""
    if plan.frame_count < 2:
        return {}
    constant: dict[str, Any] = {}
    changing = set(plan.changing_schedules())
    for name in plan.relevant_schedules():
        if name in columns and name not in changing:
            constant[name] = float(plan.schedules[name][0])
    if len(set(plan.sampler)) == 1 and "sampler" in columns:
        constant["sampler"] = plan.sampler[0]
    if len(plan.negative.texts) == 1:
        constant["negative_prompt"] = plan.negative.texts[0]
    if len(plan.positive.texts) == 1:
        constant["prompt"] = plan.positive.texts[0]
    if plan.diffused.all():
        constant["diffused"] = True
    return constant


def print_plan(plan: Plan, console: Console, every_row: bool = False, max_rows: int = 200) -> None:
    for line in summary_lines(plan):
        console.print(line, highlight=False, markup=False)
    frames = rows_to_show(plan, every_row)
    all_columns = plan.columns()
    constant = constant_columns(plan, all_columns)
    unused = set(plan.schedules) - set(plan.relevant_schedules())
    columns = [c for c in all_columns if c not in constant and c not in unused]
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for name in columns:
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    skipped = 0
    if len(frames) > max_rows:
        skipped = len(frames) - max_rows
        frames = frames[: max_rows // 2] + frames[-max_rows // 2:]
    for i, frame in enumerate(frames):
        row = plan.row(frame)
        table.add_row(*(_short(row[c]) for c in columns))
        if skipped and i == max_rows // 2 - 1:
            table.add_row(*([f"… {skipped} rows not shown (use --csv)"] + [""] * (len(columns) - 1)))
    console.print(table)
    if constant:
        values = ", ".join(f"{c}={_short(v)}" for c, v in sorted(constant.items()))
        console.print(f"constant: {values}", highlight=False, markup=False, soft_wrap=True)
