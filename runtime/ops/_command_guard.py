"""Single-use commands and bounded cost: used ids on disk, freshness, rate limits, refusal counts.

What the command path asks before a command may cost anything: is this message a retained
copy, is its ``ts`` fresh, has this user sent this ``id`` before (even before a restart), is
the user or everyone together over their rate. Messages that fail before authentication are
only counted here: one log line per ``_LOG_EVERY_S`` and one audit record per ``summary_s``,
so a flood costs a counter increment per message and no disk write.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from runtime.ops._access import CommandPolicy

__all__ = ["CommandGuard", "SeenIds", "SeenIdsError", "TokenBucket", "default_seen_path"]

_LOG_EVERY_S = 10.0
_MAX_NAMES = 50  # distinct claimed user names kept per summary (attacker-chosen strings)


def _iso(wall_s: float) -> str:
    return datetime.fromtimestamp(wall_s, UTC).isoformat(timespec="milliseconds")


def default_seen_path(source: str) -> Path:
    """``$VPLC_STATE_DIR/commands/<source>.seen``; the source (topic) as a safe file name."""
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source).strip("_") or "cmd"
    return Path(base) / "commands" / f"{safe[:150]}.seen"


class TokenBucket:
    """``rate`` per second with ``burst`` in reserve; ``take()`` is False when empty."""

    __slots__ = ("burst", "level", "rate", "stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, float(burst)
        self.level, self.stamp = float(burst), now

    def take(self, now: float) -> bool:
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


class SeenIdsError(Exception):
    """The used-id store cannot take another id (full, or its file cannot be written)."""


class SeenIds:
    """Used command ids with their expiry, in memory and in an append-only file.

    A line per id: ``expiry_wall_s <TAB> seen_wall_s <TAB> key``. Expired entries are dropped
    on load and whenever the file holds twice as many lines as live ids (rewritten). The id is
    written (and fsynced) before the command runs: after a crash an id is at worst "used"
    without having acted, never acted without being used.
    """

    def __init__(self, path: Path | None, *, max_ids: int, fsync: bool = True) -> None:
        self.path = path
        self.max_ids = max_ids
        self._fsync = fsync
        self._live: dict[str, tuple[float, float]] = {}  # key → (expiry, seen), expiry order
        self._lines = 0
        self.broken: str | None = None

    def load(self, now: float) -> None:
        """Read the ids still inside their window; an unreadable file refuses every id later."""
        if self.path is None or not self.path.exists():
            return
        try:
            self._load(now)
        except OSError as exc:  # ids used before the restart are unknown: refuse, never guess
            self.broken = f"cannot read the used command ids {self.path}: {exc.strerror}"

    def _load(self, now: float) -> None:
        assert self.path is not None
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.rstrip("\n").split("\t", 2)
                try:
                    expiry, seen = float(parts[0]), float(parts[1])
                except (ValueError, IndexError):
                    continue  # a torn last line after a crash: that id never ran
                if expiry > now and len(parts) == 3:
                    self._live[parts[2]] = (expiry, seen)
                self._lines += 1
        self._live = dict(sorted(self._live.items(), key=lambda kv: kv[1][0]))

    def __len__(self) -> int:
        return len(self._live)

    def _expire(self, now: float) -> None:
        while self._live:
            key, (expiry, _) = next(iter(self._live.items()))
            if expiry > now:
                break
            del self._live[key]

    def use(self, key: str, *, now: float, window_s: float) -> float | None:
        """Record ``key`` as used; if it already was (unexpired), return when, else None."""
        if self.broken is not None:
            raise SeenIdsError(self.broken)
        self._expire(now)
        seen = self._live.get(key)
        if seen is not None:
            return seen[1]
        if len(self._live) >= self.max_ids:
            raise SeenIdsError(
                f"{len(self._live)} command ids used within {window_s:g} s (max_ids "
                f"{self.max_ids}): refusing more until they expire"
            )
        expiry = now + window_s
        if self.path is not None:
            self._persist(f"{expiry:.3f}\t{now:.3f}\t{key}\n")
        self._live[key] = (expiry, now)
        return None

    def _persist(self, line: str) -> None:
        assert self.path is not None
        try:
            if self._lines > 2 * len(self._live) + 1000:
                self._rewrite()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SeenIdsError(f"cannot record the id in {self.path}: {exc.strerror}") from None
        self._lines += 1

    def _rewrite(self) -> None:
        assert self.path is not None
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = "".join(f"{e:.3f}\t{s:.3f}\t{k}\n" for k, (e, s) in self._live.items())
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, self.path)
        self._lines = len(self._live)


class CommandGuard:
    """The checks between authentication and the action, and the pre-authentication counters.

    ``wall`` is the wall clock (seconds since the epoch; command ``ts`` is wall time) and
    ``mono`` a monotonic clock for rates; both are arguments so tests can move time.
    """

    def __init__(
        self,
        policy: CommandPolicy,
        *,
        seen_path: Path | None,
        summary: Callable[[dict[str, Any]], None] | None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        fsync: bool = True,
    ) -> None:
        self.policy = policy
        self.wall, self.mono = wall, mono
        self._summary_sink = summary
        self.seen = SeenIds(seen_path, max_ids=policy.max_ids, fsync=fsync)
        self.seen.load(wall())
        now = mono()
        self._global = TokenBucket(policy.global_rate, policy.global_burst, now)
        self._users: dict[str, TokenBucket] = {}
        self._answers = TokenBucket(policy.refusal_answer_rate, policy.refusal_answer_burst, now)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()  # since start, for statistics
        self._period: Counter[str] = Counter()
        self._claimed: Counter[str] = Counter()
        self._limited_users: Counter[str] = Counter()
        self._samples: dict[str, str] = {}
        self._period_start = wall()
        self._logged_at = -_LOG_EVERY_S
        self._logged_counts: Counter[str] = Counter()
        self._log = structlog.get_logger("vplc.commands")
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    # ------------------------------------------------------------------ before authentication
    def refused_early(self, category: str, reason: str, claimed_user: Any) -> bool:
        """Count a message refused before authentication; True when it may still be answered."""
        with self._lock:
            self.counts[category] += 1
            self._period[category] += 1
            self._samples.setdefault(category, reason[:300])
            if isinstance(claimed_user, str):
                name = claimed_user[:64]
                if name in self._claimed or len(self._claimed) < _MAX_NAMES:
                    self._claimed[name] += 1
                else:
                    self._claimed["(other names)"] += 1
            answer = self._answers.take(self.mono())
            if not answer:
                self.counts["unanswered"] += 1
                self._period["unanswered"] += 1
            self._maybe_log(category, reason, claimed_user)
        self._ensure_timer()
        return answer

    def _maybe_log(self, category: str, reason: str, claimed_user: Any) -> None:
        now = self.mono()
        if now - self._logged_at < _LOG_EVERY_S:
            return
        since = self.counts - self._logged_counts
        self._log.warning(
            "commands_refused_before_authentication",
            latest=category,
            reason=reason[:200],
            claimed_user=claimed_user if isinstance(claimed_user, str) else None,
            since_last_line=dict(since),
            note=f"at most one such line per {_LOG_EVERY_S:g} s; the audit trail gets a summary",
        )
        self._logged_at = now
        self._logged_counts = Counter(self.counts)

    # ------------------------------------------------------------------ after authentication
    def rate_limited(self, user: str) -> str | None:
        """Why ``user``'s command is over a rate now, or None (takes a token when not)."""
        p = self.policy
        with self._lock:
            now = self.mono()
            bucket = self._users.get(user)
            if bucket is None:
                bucket = self._users[user] = TokenBucket(p.user_rate, p.user_burst, now)
            if not bucket.take(now):
                why = f"user {user!r} is over {p.user_rate:g} commands/s (burst {p.user_burst})"
            elif not self._global.take(now):
                why = f"commands over {p.global_rate:g}/s in all (burst {p.global_burst})"
            else:
                return None
            self.counts["rate_limited"] += 1
            self._period["rate_limited"] += 1
            self._limited_users[user] += 1
        self._ensure_timer()
        return why + "; nothing was done, send it again later"

    def stale(self, ts: datetime) -> str | None:
        """Why a command sent at ``ts`` is too old or too far ahead, or None."""
        age = self.wall() - ts.timestamp()
        p = self.policy
        if age > p.max_age_s:
            return (
                f"stale: ts {ts.isoformat()} is {age:.1f} s old (max_age_s {p.max_age_s:g}); a "
                "delayed or replayed message, nothing was done (check the sender's clock)"
            )
        if -age > p.max_future_s:
            return (
                f"ts {ts.isoformat()} is {-age:.1f} s in the future (max_future_s "
                f"{p.max_future_s:g}): the sender's clock is ahead; nothing was done"
            )
        return None

    def replayed(self, user: str, cmd_id: str | int) -> str | None:
        """Use ``cmd_id`` for ``user``; why not if it was used already. Raises SeenIdsError."""
        key = json.dumps([user, cmd_id])
        with self._lock:
            when = self.seen.use(key, now=self.wall(), window_s=self.policy.id_window_s)
        if when is None:
            return None
        return (
            f"command id {cmd_id!r} of user {user!r} was already used at {_iso(when)} (a "
            "replay or a duplicate delivery); nothing was done, send a new id"
        )

    # ------------------------------------------------------------------ summary records
    def _ensure_timer(self) -> None:
        if self._timer is not None or self._summary_sink is None:
            return
        with self._lock:
            if self._timer is None:
                self._timer = threading.Thread(
                    target=self._run_timer, name="command-refusal-summary", daemon=True
                )
                self._timer.start()

    def _run_timer(self) -> None:
        while not self._stop.wait(self.policy.summary_s):
            self.flush()

    def flush(self) -> dict[str, Any] | None:
        """Hand the refusals counted since the last summary to the sink; the summary or None."""
        with self._lock:
            if not self._period:
                return None
            now = self.wall()
            body = {
                "period_start": _iso(self._period_start),
                "period_end": _iso(now),
                "counts": dict(self._period),
                "claimed_users": dict(self._claimed.most_common(20)),
                "rate_limited_users": dict(self._limited_users.most_common(20)),
                "samples": dict(self._samples),
            }
            self._period.clear()
            self._claimed.clear()
            self._limited_users.clear()
            self._samples.clear()
            self._period_start = now
        if self._summary_sink is not None:
            try:
                self._summary_sink(body)
            except Exception as exc:  # counted again next period would double: log loudly
                self._log.error("command_refusal_summary_failed", error=repr(exc), **body)
        return body

    def close(self) -> None:
        """Write the last summary and stop the timer."""
        self._stop.set()
        self.flush()
