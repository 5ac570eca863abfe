"""The `deforge` command line: plan, plot, render, preview. User errors print one line each, exit 2."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console

from .errors import DeforgeError, SettingsError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Keyframed Stable Diffusion animation: plan, plot, preview and render settings files.")
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", highlight=False, markup=True)


def _run(action: Callable[[], None]) -> None:
    """Run a command; a user error becomes one line per problem on stderr and exit code 2."""
    warnings.showwarning = _show_warning
    try:
        action()
    except SettingsError as error:
        for line in error.problems:
            err.print(f"error: {line}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    except DeforgeError as error:
        err.print(f"error: {error}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt as error:
        from .api import Interrupted

        if isinstance(error, Interrupted):
            r = error.result
            err.print(f"interrupted: {len(r.frames)} complete frames in {r.folder}"
                      + (f", video {r.video.name}" if r.video else "")
                      + f"; resume with resume_from_timestring true and resume_timestring {r.timestring!r}",
                      highlight=False, markup=False)
        else:
            err.print("interrupted", highlight=False)
        raise typer.Exit(130) from None


def _with_overrides(path: Path, **values: Any):
    """The settings of a file with the command line's options (those given) written over them."""
    from .settings import load_settings, with_overrides

    return with_overrides(load_settings(path), **{k: str(v) if isinstance(v, Path) else v for k, v in values.items()})


def _plan(path: Path, seed: int | None):
    """The plan of a settings file; --seed stands in for a -1 (random) seed only."""
    from .plan import compute_plan
    from .settings import load_settings

    loaded = load_settings(path)
    return compute_plan(loaded, seed=seed if loaded.seed == -1 else None)


def _print_result(result: Any) -> None:
    out.print(f"output: {result.folder}", highlight=False)
    if result.video is not None:
        out.print(f"video: {result.video}", highlight=False)


@app.command()
def plan(
    settings: Path = typer.Argument(..., help="Settings file (JSON)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write one row per frame, one column per setting, to this file."),
    seed: Optional[int] = typer.Option(None, help="Use this seed when the settings say -1."),
    all_rows: bool = typer.Option(False, "--all", help="Print every frame, not only the first, the last and changes."),
) -> None:
    """Print the per-frame plan: every schedule, prompt, seed and step count, without a model."""

    def action() -> None:
        from .report import print_plan

        result = _plan(settings, seed)
        print_plan(result, out, every_row=all_rows)
        if csv is not None:
            result.write_csv(csv)
            out.print(f"wrote {csv}", highlight=False)

    _run(action)


@app.command()
def plot(
    settings: Path = typer.Argument(..., help="Settings file (JSON)."),
    output: Path = typer.Option(..., "-o", "--output", help="PNG file to write."),
    seed: Optional[int] = typer.Option(None, help="Use this seed when the settings say -1."),
) -> None:
    """Draw every non-constant schedule against frame number, keyframes marked."""

    def action() -> None:
        from .plotting import plot_schedules

        result = _plan(settings, seed)
        plot_schedules(result, output)
        out.print(f"wrote {output}", highlight=False)

    _run(action)


@app.command()
def render(
    settings: Path = typer.Argument(..., help="Settings file (JSON)."),
    output_path: Optional[Path] = typer.Option(None, "--output-path", help="Override output_path."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Override max_frames."),
    model: Optional[str] = typer.Option(None, "--model", help="Override model (hub id, folder, file, tiny-random)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print each frame's parameters."),
) -> None:
    """Render a settings file: still images, 2D/3D animation, video input or interpolation."""

    def action() -> None:
        from .api import render as render_api
        loaded = _with_overrides(settings, output_path=output_path, max_frames=max_frames, model=model)
        _print_result(render_api(loaded, verbose=verbose, console=err))

    _run(action)


@app.command()
def preview(
    settings: Path = typer.Argument(..., help="Settings file (JSON)."),
    output_path: Optional[Path] = typer.Option(None, "--output-path", help="Override output_path."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Override max_frames."),
) -> None:
    """Render the camera motion only (no diffusion model) over the init image or a test card."""

    def action() -> None:
        from .api import preview as preview_api
        loaded = _with_overrides(settings, output_path=output_path, max_frames=max_frames)
        _print_result(preview_api(loaded, console=err))

    _run(action)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
