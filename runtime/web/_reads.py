"""The HMI's read-only API: app description, trends, instance tree, tasks, audit trail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.blocks import COMMANDS
from runtime.ops._audit_verify import verify_audit_log
from runtime.web._sessions import Session
from runtime.web._signing import rule_json
from runtime.web._trend import read_traces

if TYPE_CHECKING:
    from runtime.web._context import WebContext

__all__ = ["read_routes"]

_AUDIT_LIMIT = 500
_AUDIT_MAX_BYTES = 64 * 1024 * 1024  # the page reads at most the last 64 MiB of a trail


def _bad(reason: str) -> JSONResponse:
    return JSONResponse({"status": "refused", "reason": reason}, status_code=400)


def read_routes(
    ctx: WebContext,
) -> list[tuple[str, Callable[[Request, Session], Awaitable[Response]]]]:
    init = ctx.init
    names = [p.name for p in init.points]
    index = {n: i for i, n in enumerate(names)}

    async def meta(request: Request, session: Session) -> Response:
        return JSONResponse(
            {
                "app": init.app_name,
                "version": init.app_version,
                "points": [
                    {
                        "name": p.name,
                        "type": p.type,
                        "direction": p.direction,
                        "unit": p.unit,
                        "range": p.range,
                        "description": p.description,
                    }
                    for p in init.points
                ],
                "params": [p.model_dump(mode="json") for p in init.params],
                "alarms": init.alarm_paths,
                "phases": init.phase_paths,
                "phase_commands": list(COMMANDS),
                "loops": [vars(loop) for loop in init.loops],
                "tasks": init.tasks,
                "overview": init.overview,
                "trend": ctx.hub.trend.statistics(),
                "sample_ms": init.config.sample_ms,
                "critical": [rule_json(r) for r in init.critical],
            }
        )

    async def state(request: Request, session: Session) -> Response:
        return JSONResponse(ctx.hub.snapshot())

    async def trend(request: Request, session: Session) -> Response:
        wanted = [n for n in request.query_params.get("points", "").split(",") if n]
        unknown = [n for n in wanted if n not in index]
        if unknown or not wanted:
            return _bad(f"points: unknown {unknown}" if unknown else "points: name at least one")
        try:
            t0 = float(request.query_params.get("from", "-inf"))
            t1 = float(request.query_params.get("to", "inf"))
        except ValueError:
            return _bad("from/to: expected app-time seconds")
        ring = ctx.hub.trend.query([index[n] for n in wanted], t0, t1)
        out: dict[str, Any] = {
            "t": ring["t"],
            "series": {names[i]: s for i, s in ring["series"].items()},
            "oldest": ring["oldest"],
        }
        oldest = ring["oldest"]
        if init.config.trace_files and (oldest is None or t0 < oldest):
            end = min(t1, oldest) if oldest is not None else t1
            loop = asyncio.get_running_loop()
            out["trace"] = await loop.run_in_executor(
                None, read_traces, init.config.trace_files, wanted, t0, end
            )
        return JSONResponse(out)

    async def query(body: dict[str, Any]) -> Response:
        answer = await ctx.queries.get(body)
        return JSONResponse(answer, status_code=400 if "error" in answer else 200)

    async def tree(request: Request, session: Session) -> Response:
        return await query({"what": "tree"})

    async def watch(request: Request, session: Session) -> Response:
        paths = [p for p in request.query_params.get("paths", "").split(",") if p]
        return await query({"what": "watch", "paths": paths})

    async def loops(request: Request, session: Session) -> Response:
        paths = [lp.path for lp in init.loops]
        return await query({"what": "watch", "paths": paths, "loops": True})

    async def tasks(request: Request, session: Session) -> Response:
        loop = asyncio.get_running_loop()
        hist = await ctx.queries.get({"what": "histograms"})
        change = await loop.run_in_executor(None, _last_online_change, ctx)
        stats = ctx.link.engine_stats
        return JSONResponse(
            {
                "tasks": stats.get("tasks", {}),
                "histograms": hist.get("tasks", {}),
                "state": stats.get("state"),
                "version": stats.get("version"),
                "app_time_s": stats.get("app_time_s"),
                "web": ctx.hub.statistics(),
                "online_change": change,
            }
        )

    async def audit(request: Request, session: Session) -> Response:
        if init.audit_file is None:
            return JSONResponse({"records": [], "note": "no audit trail configured"})
        filters = {k: request.query_params.get(k, "") for k in ("user", "cmd", "status", "text")}
        loop = asyncio.get_running_loop()
        records = await loop.run_in_executor(None, _audit_records, ctx, filters)
        return JSONResponse({"records": records, "file": str(init.audit_file)})

    async def verify(request: Request, session: Session) -> Response:
        if init.audit_file is None:
            return JSONResponse({"ok": False, "summary": "no audit trail configured"})
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, verify_audit_log, init.audit_file)
        return JSONResponse(
            {"ok": result.ok, "records": result.records, "summary": result.summary()}
        )

    return [
        ("/api/meta", meta),
        ("/api/state", state),
        ("/api/trend", trend),
        ("/api/tree", tree),
        ("/api/watch", watch),
        ("/api/loops", loops),
        ("/api/tasks", tasks),
        ("/api/audit", audit),
        ("/api/audit/verify", verify),
    ]


def _tail_lines(ctx: WebContext) -> list[bytes]:
    path = ctx.init.audit_file
    assert path is not None
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - _AUDIT_MAX_BYTES))
            data = fh.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > _AUDIT_MAX_BYTES:
        lines = lines[1:]  # the first may be cut
    return [line for line in lines if line.strip()]


def _audit_records(ctx: WebContext, filters: dict[str, str]) -> list[dict[str, Any]]:
    """The newest matching records first, at most _AUDIT_LIMIT."""
    out: list[dict[str, Any]] = []
    text = filters["text"].lower()
    for line in reversed(_tail_lines(ctx)):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        if filters["user"] and rec.get("user") != filters["user"]:
            continue
        if filters["cmd"] and filters["cmd"] not in (rec.get("cmd"), rec.get("event")):
            continue
        if filters["status"] and rec.get("status") != filters["status"]:
            continue
        if text and text not in line.decode("utf-8", "replace").lower():
            continue
        out.append(rec)
        if len(out) >= _AUDIT_LIMIT:
            break
    return out


def _last_online_change(ctx: WebContext) -> dict[str, Any] | None:
    if ctx.init.audit_file is None:
        return None
    for line in reversed(_tail_lines(ctx)[-5000:]):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event") == "online_change":
            return rec
    return None
