"""E-signatures in the HMI: the app's critical rules for the pages, a preview for the dialog.

The runtime decides (``runtime.ops._signatures``: a preview answers ``critical`` and the
meanings for the state *now*, e.g. a setpoint change only during GROW); the app's
``gmp.critical`` rules, known here from the manifest, let a page preview first instead of
being refused, and give the dialog the rule's words.
"""

from __future__ import annotations

from typing import Any

from runtime.core._gmp import CriticalAction

__all__ = ["describe_preview", "rule_json"]


def rule_json(rule: CriticalAction) -> dict[str, Any]:
    """A rule as the pages use it (``during`` only says whether the runtime state decides)."""
    return {
        "cmd": rule.cmd,
        "targets": list(rule.targets),
        "commands": list(rule.commands),
        "conditional": rule.during is not None,
        "meanings": list(rule.meanings),
        "signers": len(rule.meanings),
        "description": rule.description or f"critical action ({rule.cmd})",
    }


def _target(cmd: Any) -> str | None:
    for key in ("name", "point", "block"):
        if hasattr(cmd, key):
            return str(getattr(cmd, key))
    return None


def _matches(rule: CriticalAction, cmd: Any) -> bool:
    if rule.cmd != cmd.cmd or (rule.targets and _target(cmd) not in rule.targets):
        return False
    return not rule.commands or str(getattr(cmd, "command", "")).strip().upper() in rule.commands


def describe_preview(
    rules: list[CriticalAction], cmd: Any, preview: dict[str, Any]
) -> dict[str, Any]:
    """The runtime's preview plus the rule the dialog names: description, meanings, signers."""
    meanings = list(preview.get("meanings") or [])
    rule = next(
        (r for r in rules if _matches(r, cmd) and list(r.meanings) == meanings),
        None,
    )
    description = (
        (rule.description or f"critical action ({rule.cmd})") if rule is not None else cmd.cmd
    )
    return {
        "content": preview.get("content"),
        "content_hash": preview.get("content_hash"),
        "critical": bool(preview.get("critical")),
        "expires_in_s": preview.get("expires_in_s"),
        "rule": {"description": description, "meanings": meanings, "signers": len(meanings)}
        if preview.get("critical")
        else None,
    }
