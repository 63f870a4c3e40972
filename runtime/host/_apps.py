"""What every ``vplc`` subcommand shares: exit codes, usage errors, finding an app by name."""

from __future__ import annotations

import argparse
import stat
from importlib.metadata import entry_points
from pathlib import Path

from runtime.blocks import log_implementation
from runtime.core._loader import LoadedApp, load_app

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INVALID",
    "EXIT_OK",
    "UsageError",
    "open_app",
    "path_arg",
    "resolve_app_dir",
]

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2


def path_arg(text: str) -> Path:
    """argparse type of a path: "" is refused (``Path("")`` would be ".", the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return Path(text)


class UsageError(Exception):
    """Bad command-line input that argparse cannot see (exit 2)."""


def resolve_app_dir(ref: str) -> Path:
    """An app folder path, or the name of an installed app (entry point group ``vplc.apps``)."""
    path = Path(ref)
    kind, problem = 0, None
    try:
        kind = path.stat().st_mode
    except OSError as exc:  # missing, or a name the OS refuses (too long, a file as a folder)
        problem = exc
    if stat.S_ISDIR(kind):
        return path
    for ep in entry_points(group="vplc.apps"):
        if ep.name == ref:
            module = ep.load()
            return Path(next(iter(module.__path__)))
    if kind:
        raise UsageError(f"{ref}: not a folder; expected an app folder holding app.yaml")
    if problem is not None and not isinstance(problem, FileNotFoundError | NotADirectoryError):
        raise UsageError(f"{ref[:200]}: cannot use as an app folder: {problem.strerror}")
    installed = ", ".join(sorted(ep.name for ep in entry_points(group="vplc.apps"))) or "none"
    raise UsageError(
        f"{ref}: no such app folder, and no installed app of that name "
        f"(installed apps: {installed})"
    )


def open_app(app_dir: Path | str, *, seed: int = 0) -> LoadedApp:
    """``load_app``, after saying once which block build runs (a warning if Cython fell back).

    Logged here, once logging is configured, and not when ``runtime.blocks`` is imported (a
    CLI module imports it before the log format is known: the warning would go to stdout).
    """
    log_implementation()
    return load_app(app_dir, seed=seed)
