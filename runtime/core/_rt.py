"""OS real-time knobs for the scan thread: SCHED_FIFO, CPU affinity, timer slack, GC control."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import resource
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from runtime.core.manifest import RealtimeConfig

_PR_SET_TIMERSLACK = 29
_MCL_CURRENT, _MCL_FUTURE, _MCL_ONFAULT = 1, 2, 4
_CAP_IPC_LOCK = 14
_GEN0_SLACK_NS = 300_000
_GEN1_SLACK_NS = 2_000_000
AUTO_FIFO_PRIORITY = 80  # cyclictest's customary priority: above the usual daemons
CPU_DMA_LATENCY = "/dev/cpu_dma_latency"  # the kernel's PM QoS request: held while open
log = structlog.get_logger("vplc.rt")


@dataclass(frozen=True)
class RtPlan:
    """The real-time settings to try on the scan thread, once automatic ones are resolved."""

    fifo_priority: int
    cpus: list[int]
    timer_slack_ns: int
    lock_memory: bool
    auto: frozenset[str] = frozenset()  # the knobs chosen automatically, not asked for
    cpu_latency_us: int | None = None  # a PM QoS wake-up latency limit to hold, or none


def plan_realtime(rt: RealtimeConfig, *, auto: bool) -> RtPlan:
    """Fill the knobs neither the manifest nor the operator set with the best settings.

    With ``auto`` (``vplc run`` without --no-rt-auto) an unset priority becomes SCHED_FIFO
    ``AUTO_FIFO_PRIORITY``, unset CPUs the last CPU this process may use (when it may use
    more than one: the others keep the kernel's and the front-ends' work), an unset memory
    lock ``mlockall``, an unset CPU wake-up latency limit 0 µs (``CpuLatencyHold``).
    Explicit values, 0, [] and null included, are never overridden.
    """
    given = rt.model_fields_set
    chosen: set[str] = set()
    fifo, cpus = rt.fifo_priority, list(rt.cpus)
    if auto and "fifo_priority" not in given:
        fifo = AUTO_FIFO_PRIORITY
        chosen.add("sched")
    if auto and "cpus" not in given:
        allowed = sorted(os.sched_getaffinity(0))
        cpus = allowed[-1:] if len(allowed) > 1 else []
        chosen.add("affinity")
    lock = rt.lock_memory
    if lock is None:
        lock = auto
        if auto:
            chosen.add("memory_lock")
    latency = rt.cpu_dma_latency_us
    if auto and "cpu_dma_latency_us" not in given:
        latency = 0
        chosen.add("cpu_latency")
    return RtPlan(fifo, cpus, rt.timer_slack_ns, lock, frozenset(chosen), latency)


class CpuLatencyHold:
    """A PM QoS CPU wake-up latency limit, held for as long as the scan runs.

    An idle CPU sleeps in a power state it takes time to leave; on this project's VMs
    (cpuidle haltpoll) that doubled every wake-up of the scan: a 1 ms sleep ended 36 µs late
    at the median instead of 16 µs, and the adaptive spin paid the difference on every cycle
    (11 % CPU instead of 5-7 % in ``bench_realtime``). cyclictest holds the same request
    (0 µs) while it measures; so do real-time Linux control stacks. The kernel drops the
    request when the file is closed, also when the process dies, so nothing is left behind.
    """

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(
        cls, latency_us: int, path: str = CPU_DMA_LATENCY
    ) -> tuple[CpuLatencyHold | None, str]:
        """Open and write the request: (the hold, what is now in force) or (None, why not)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            return None, f"not held (cannot open {path}: {exc.strerror})"
        try:
            os.write(fd, struct.pack("i", latency_us))
        except OSError as exc:
            os.close(fd)
            return None, f"not held (cannot write {path}: {exc.strerror})"
        return cls(fd), f"{latency_us} us (held)"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def apply_thread_realtime(
    *, fifo_priority: int, cpus: Sequence[int], timer_slack_ns: int, lock_memory: bool = False
) -> tuple[dict[str, str], dict[str, str]]:
    """Apply what the OS permits to the calling thread: (what each knob is now, refusals).

    Each knob falls back on its own (unprivileged containers forbid SCHED_FIFO but allow
    the rest), so the runtime always starts; the caller logs one line with both.
    """
    report: dict[str, str] = {}
    refused: dict[str, str] = {}
    # SCHED_FIFO last: finding libc runs ldconfig in a child process and parses its output
    # (~20 ms of CPU), which at FIFO priority, on the pinned CPU, would stall any other
    # real-time scan there (a second runtime on the host, a blue-green standby).
    slack, ok = _set_timer_slack(timer_slack_ns)
    report["timer_slack"] = slack
    if not ok:
        refused["timer_slack"] = slack
    if lock_memory:
        locked, ok = _lock_memory()
        report["memory_lock"] = locked
        if not ok:
            refused["memory_lock"] = locked
    if cpus:
        try:
            os.sched_setaffinity(0, set(cpus))
            report["affinity"] = ",".join(map(str, cpus))
        except (OSError, ValueError) as exc:
            report["affinity"] = f"any (refused: {exc})"
            refused["affinity"] = f"CPUs {list(cpus)}: {exc}"
    if fifo_priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo_priority))
            report["sched"] = f"SCHED_FIFO {fifo_priority}"
        except (OSError, AttributeError) as exc:
            report["sched"] = f"SCHED_OTHER (SCHED_FIFO refused: {exc})"
            refused["sched"] = f"SCHED_FIFO {fifo_priority}: {exc}"
    else:
        report["sched"] = "SCHED_OTHER"
    return {k: report[k] for k in _REPORT_ORDER if k in report}, refused


_REPORT_ORDER = ("sched", "affinity", "timer_slack", "memory_lock")  # as logged before


HELPER_FIFO_PRIORITY = 1  # above every ordinary process, below any scan


def follow_scan_realtime(scan_tid: int) -> str | None:
    """Run the calling thread at SCHED_FIFO 1 if the scan thread ``scan_tid`` runs SCHED_FIFO.

    For the threads of the scan process that take the GIL often (a front-end's link thread):
    the GIL is no priority-inheriting lock, so an ordinary thread preempted by another
    process while it holds the GIL keeps the real-time scan waiting a whole CFS slice (a
    perf sched trace showed 1-7 ms late wakes of a FIFO-80 scan, woken only when the
    preempted link thread ran again and dropped the GIL). At the lowest real-time priority
    ordinary processes no longer preempt it, and the scan still does. Reset on fork: a
    process it spawns (a restarted front-end child) is ordinary again.

    Returns what the thread runs at now, or None when the scan thread is not SCHED_FIFO.
    """
    try:
        policy = os.sched_getscheduler(scan_tid) & ~os.SCHED_RESET_ON_FORK
    except OSError:
        return None  # the scan thread is gone
    if policy != os.SCHED_FIFO:
        return None
    flags = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
    try:
        os.sched_setscheduler(0, flags, os.sched_param(HELPER_FIFO_PRIORITY))
    except OSError as exc:
        return f"SCHED_OTHER (SCHED_FIFO {HELPER_FIFO_PRIORITY} refused: {exc})"
    return f"SCHED_FIFO {HELPER_FIFO_PRIORITY}"


def _set_timer_slack(ns: int) -> tuple[str, bool]:
    libc = _libc()
    if libc is None:
        return "default (libc not found)", False
    try:
        if libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) != 0:
            return f"default (prctl errno {ctypes.get_errno()})", False
    except (OSError, AttributeError) as exc:
        return f"default ({exc})", False
    return f"{ns} ns", True


def _lock_memory() -> tuple[str, bool]:
    """``mlockall`` so no page the scan touches is ever paged out (a major fault costs ms).

    Only with CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK: under a finite limit, locking
    future mappings would make later allocations fail. MCL_ONFAULT locks pages as they are
    first touched, so the 8 MB stacks of other threads do not all become resident.
    """
    limit = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    if not _has_capability(_CAP_IPC_LOCK) and limit != resource.RLIM_INFINITY:
        return f"no (no CAP_IPC_LOCK and RLIMIT_MEMLOCK is {limit} bytes)", False
    libc = _libc()
    if libc is None:
        return "no (libc not found)", False
    flags = _MCL_CURRENT | _MCL_FUTURE
    if libc.mlockall(flags | _MCL_ONFAULT) == 0:
        return "mlockall (on fault)", True
    if libc.mlockall(flags) == 0:  # kernels before 4.4 have no MCL_ONFAULT
        return "mlockall", True
    return f"no (mlockall errno {ctypes.get_errno()})", False


def _has_capability(bit: int) -> bool:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


@functools.cache  # find_library spawns ldconfig: once per process is enough
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name, use_errno=True)


class GcControl:
    """Keeps the cyclic garbage collector out of the scan: freeze, then collect in slack time."""

    __slots__ = ("_base", "collections", "enabled", "threshold")

    def __init__(self, *, enabled: bool, threshold: int = 700) -> None:
        self.enabled = enabled
        self.threshold = threshold
        self.collections = [0, 0, 0]  # the ones maybe_collect ran, per generation
        self._base = _process_collections()

    def freeze(self) -> None:
        """Move everything allocated at start-up out of the collector's sight."""
        if self.enabled:
            gc.collect()
            gc.freeze()
            gc.disable()
        self._base = _process_collections()  # the start-up collection is not the scan's

    def process_collections(self) -> list[int]:
        """Collections per generation in the whole process since start (or ``freeze``).

        Counts the automatic ones too (virtual time, a disabled GcControl, other threads), so
        a run can show that the collector stayed out of the scan, not just that we did not
        call it.
        """
        now = _process_collections()
        return [n - b for n, b in zip(now, self._base, strict=True)]

    def maybe_collect(self, slack_ns: int) -> None:
        """Collect the young generation when the next release is far enough away.

        A young-generation pass costs tens of µs, an older one up to milliseconds; a full
        collection never runs in the scan. If slack never comes (a task that uses its whole
        period), collect anyway once garbage reaches ten thresholds, so memory stays bounded.
        """
        if not self.enabled:
            return
        g0, g1, _ = gc.get_count()
        if g0 < self.threshold:
            return
        if slack_ns < _GEN0_SLACK_NS and g0 < 10 * self.threshold:
            return
        gen = 1 if g1 >= 10 and slack_ns >= _GEN1_SLACK_NS else 0
        gc.collect(gen)
        self.collections[gen] += 1

    def release(self) -> None:
        if self.enabled:
            gc.enable()
            gc.unfreeze()


def _process_collections() -> list[int]:
    return [int(g["collections"]) for g in gc.get_stats()]
