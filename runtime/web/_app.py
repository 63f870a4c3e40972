"""The HMI's HTTP face (Starlette): login, live stream, writes; read-only pages in _reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from runtime.web._context import WebContext
from runtime.web._reads import read_routes
from runtime.web._sessions import LoginRefusedError, Session
from runtime.web._writes import AckBody, ForceBody, ParameterBody, PhaseBody, UnforceBody

__all__ = ["COOKIE", "WebContext", "build_app"]

STATIC = Path(__file__).parent / "static"
COOKIE = "vplc_session"
CSRF_HEADER = "x-csrf-token"
_HEARTBEAT_S = 1.0
# Nothing inline, nothing from elsewhere: an injected <script> in a reason or comment could
# not run even if a page forgot to show it as text (they all use textContent).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=64)
    password: str = Field(max_length=256)


def problem(status: int, reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": "refused", "reason": reason, **extra}, status_code=status)


class _Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response


Handler = Callable[[Request, Session], Awaitable[Response]]


def build_app(ctx: WebContext) -> Starlette:
    tls = ctx.init.config.tls

    def session_of(request: Request, *, touch: bool = True) -> Session | None:
        return ctx.sessions.get(request.cookies.get(COOKIE), touch=touch)

    def reader(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = session_of(request)
            if session is None:
                return problem(401, "not logged in (or the session ended): log in again")
            return await fn(request, session)

        return endpoint

    def writer(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = session_of(request)
            if session is None:
                return problem(401, "not logged in (or the session ended): log in again")
            if not session.csrf_ok(request.headers.get(CSRF_HEADER)):
                return problem(403, "missing or wrong CSRF token: reload the page and try again")
            return await fn(request, session)

        return endpoint

    async def body_of(request: Request, model: type[BaseModel]) -> Any:
        try:
            return model.model_validate(await request.json())
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            return problem(400, f"invalid request: {where}")
        except ValueError:
            return problem(400, "invalid request: the body is not JSON")

    async def login(request: Request) -> Response:
        body = await body_of(request, LoginBody)
        if isinstance(body, Response):
            return body
        try:
            session = ctx.sessions.login(body.user, body.password)
        except LoginRefusedError as exc:
            return problem(401, str(exc))
        response = JSONResponse(_session_json(session, ctx))
        response.set_cookie(
            COOKIE, session.sid, httponly=True, secure=tls, samesite="strict", path="/"
        )
        return response

    async def logout(request: Request, session: Session) -> Response:
        ctx.sessions.logout(session.sid)
        response = JSONResponse({"status": "logged out"})
        response.delete_cookie(COOKIE, path="/", httponly=True, secure=tls, samesite="strict")
        return response

    async def whoami(request: Request, session: Session) -> Response:
        return JSONResponse(_session_json(session, ctx))

    async def stream(request: Request) -> Response:
        # Watching a screen is not activity: the idle timeout counts the operator's requests.
        session = session_of(request, touch=False)
        if session is None:
            return problem(401, "not logged in (or the session ended): log in again")
        if len(ctx.hub.subscribers) >= ctx.init.config.max_clients:
            return problem(503, f"{ctx.init.config.max_clients} live streams already open")
        return StreamingResponse(
            _events(ctx, session.sid),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def command(make: Callable[[Session, Any], Any], model: type[BaseModel]) -> Handler:
        async def run(request: Request, session: Session) -> Response:
            body = await body_of(request, model)
            if isinstance(body, Response):
                return body
            status, answer = await ctx.commands.run(session, make(session, body))
            return JSONResponse(answer, status_code=status)

        return run

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    cmds = ctx.commands
    set_parameter = command(cmds.set_parameter, ParameterBody)
    routes = [
        Route("/", index),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", writer(logout), methods=["POST"]),
        Route("/api/session", reader(whoami)),
        Route("/api/stream", stream),
        Route("/api/parameter", writer(set_parameter), methods=["POST"]),
        Route("/api/alarm/ack", writer(command(cmds.ack, AckBody)), methods=["POST"]),
        Route("/api/phase", writer(command(cmds.phase, PhaseBody)), methods=["POST"]),
        Route("/api/force", writer(command(cmds.force, ForceBody)), methods=["POST"]),
        Route("/api/unforce", writer(command(cmds.unforce, UnforceBody)), methods=["POST"]),
        *[Route(path, reader(fn)) for path, fn in read_routes(ctx)],
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Headers)])


def _session_json(session: Session, ctx: WebContext) -> dict[str, Any]:
    return {
        "user": session.user,
        "role": session.role,
        "csrf": session.csrf,
        "idle_s": ctx.sessions.idle_s,
    }


async def _events(ctx: WebContext, sid: str) -> AsyncIterator[str]:
    """Server-sent events: a full picture first, then each change; a ping every second."""
    queue = ctx.hub.subscribe()
    try:
        while True:
            try:
                text = await asyncio.wait_for(queue.get(), _HEARTBEAT_S)
            except TimeoutError:
                if not ctx.sessions.alive(sid):
                    yield "event: logout\ndata: {}\n\n"
                    return
                status = ctx.hub.runtime_status()
                yield f"event: ping\ndata: {_json(status)}\n\n"
                continue
            yield f"data: {text}\n\n"
    finally:
        ctx.hub.unsubscribe(queue)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
