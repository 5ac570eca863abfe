"""Generates docs/settings.md from the settings model, so the reference cannot drift.

Run `python -m deforge.docs` after changing a setting.
"""

from __future__ import annotations

import json
from pathlib import Path

from .settings import Settings

GROUP_TITLES = {
    "model": "Model and device", "image": "Image", "sampling": "Sampling and seeds", "prompts": "Prompts",
    "batch": "Batches (still images)", "output": "Output", "init": "Init image", "mask": "Mask",
    "animation": "Animation", "motion": "Motion (2D and 3D)", "2D motion": "2D motion", "3D motion": "3D motion and depth",
    "frame": "Per-frame image steps", "anti-blur": "Anti-blur (unsharp mask)", "video input": "Video Input",
    "interpolation": "Interpolation", "resume": "Resume", "video out": "Video out",
    "hybrid": "Hybrid video (accepted, not implemented)", "unsupported": "Gradient guidance (accepted, not implemented)",
}


def _default(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("|", "\\|")


def settings_reference() -> str:
    lines = ["# Settings reference", "",
             "Generated from `deforge.settings.Settings` by `python -m deforge.docs`; do not edit by hand.",
             "A settings file (JSON) sets only what differs from these defaults. Names and defaults follow the "
             "original Deforum notebook v0.7.1; files written by it load as they are.", ""]
    groups: dict[str, list[str]] = {}
    for name, field in Settings.model_fields.items():
        group = (field.json_schema_extra or {}).get("group", "other")
        doc = (field.description or "").replace("|", "\\|")
        groups.setdefault(group, []).append(f"| `{name}` | `{_default(field.default)}` | {doc} |")
    for group, rows in groups.items():
        lines += [f"## {GROUP_TITLES.get(group, group)}", "", "| setting | default | meaning |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


def main() -> None:
    target = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
    target.write_text(settings_reference(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
