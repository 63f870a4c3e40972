"""The web process's queries: shared between browsers, answered cheaply in the scan process."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from runtime import load_app
from runtime.host import Runtime
from runtime.web._queries import MAX_WATCH, QueryAnswers
from runtime.web._shared import SharedQueries

APP = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"


class _Asker:
    """Stands for the pipe: counts the questions, answers after ``release`` is set."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.error = False

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(body)
        self.release.wait(5)
        if self.error:
            return {"error": "no answer from the scan process"}
        return {"n": len(self.asked)}


def test_five_browsers_asking_at_once_make_one_query() -> None:
    asker, now, generation = _Asker(), [0.0], [0]
    shared = SharedQueries(asker, lambda: generation[0], share_s=0.5, clock=lambda: now[0])

    async def scenario() -> None:
        body = {"what": "watch", "paths": ["loops.tic101"], "loops": True}
        waiting = [asyncio.ensure_future(shared.get(dict(body))) for _ in range(5)]
        await asyncio.sleep(0.05)
        waiting[0].cancel()  # one browser goes away: the others still get the answer
        asker.release.set()
        answers = await asyncio.gather(*waiting[1:])
        assert answers == [{"n": 1}] * 4 and len(asker.asked) == 1
        now[0] = 0.4
        assert await shared.get(body) == {"n": 1}  # within share_s: the same answer
        assert await shared.get({"what": "histograms"}) == {"n": 2}  # another question
        now[0] = 0.6
        assert await shared.get(body) == {"n": 3}  # older than share_s: asked again
        generation[0] += 1  # a write went through: fresh at once
        assert await shared.get(body) == {"n": 4}
        asker.error = True
        generation[0] += 1
        assert "error" in await shared.get(body)
        asker.error = False
        assert await shared.get(body) == {"n": 6}  # a failed answer is not kept

    asyncio.run(scenario())
    assert shared.statistics()["asked"] == 6 and shared.statistics()["shared"] == 5


def _runtime() -> Runtime:
    return Runtime(load_app(APP))


def test_watch_reads_the_instances_and_refuses_bad_requests() -> None:
    engine = _runtime().engine
    answers = QueryAnswers(engine, timeout_s=2)
    pid = engine.app.tree.find("loops.tic101")
    assert pid is not None
    pid.OUT = 42.5
    got = answers.answer({"what": "watch", "paths": ["loops.tic101", "nowhere"], "loops": True})
    assert got["values"]["loops.tic101"]["OUT"] == 42.5 and got["values"]["nowhere"] is None
    assert "at most" in answers.answer({"what": "watch", "paths": ["x"] * (MAX_WATCH + 1)})["error"]
    assert "paths" in answers.answer({"what": "watch", "paths": "loops.tic101"})["error"]
    assert "unknown query" in answers.answer({"what": "everything"})["error"]


class _Swapping:
    """A running engine whose online change lands between the link thread's lookup and the
    scan thread's read (the read runs on submit, after the app was swapped)."""

    running = True

    def __init__(self, engine: Any, new_app: Any) -> None:
        self.app, self.now_ns, self.tasks = engine.app, 0, engine.tasks
        self.new_app = new_app

    def submit(self, command: Any) -> Future[Any]:
        self.app = self.new_app
        fut: Future[Any] = Future()
        fut.set_result(command(self))
        return fut


def test_an_online_change_between_lookup_and_read_reads_the_new_instances() -> None:
    engine = _runtime().engine
    new_app = load_app(APP)
    old, new = engine.app.tree.find("loops.tic101"), new_app.tree.find("loops.tic101")
    assert old is not None and new is not None
    old.OUT, new.OUT = 1.0, 2.0
    answers = QueryAnswers(_Swapping(engine, new_app), timeout_s=2)  # type: ignore[arg-type]
    got = answers.answer({"what": "watch", "paths": ["loops.tic101"], "loops": True})
    assert got["values"]["loops.tic101"]["OUT"] == 2.0


def test_the_tree_is_listed_once_per_app_version() -> None:
    engine = _runtime().engine
    answers = QueryAnswers(engine, timeout_s=2)
    first = answers.answer({"what": "tree"})["tree"]
    assert {"path": "loops.tic101", "type": "PID", "kind": "block"} in first
    assert answers.answer({"what": "tree"})["tree"] is first  # not walked again
    engine.app = load_app(APP)  # what an online change does to the engine
    assert answers.answer({"what": "tree"})["tree"] is not first
