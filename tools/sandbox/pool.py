"""The pool of prestarted sandbox workers, and one run of code in one of them.

The code runs in another process (`tools.sandbox.worker`), so the server's event loop only
awaits a pipe: other streams are not delayed, and a run that loops or allocates forever costs
that process, never the server's. The parent keeps the run's wall clock: a run that overruns
`SANDBOX_TIME_SECONDS` is stopped by killing its worker (QuickJS cannot interrupt everything,
a catastrophic regular expression for one), and a worker that ran out of memory, crashed or
misbehaved on the pipe is killed too; each killed worker is replaced in the background so the
next run finds one ready. Time spent serving the code's `api.fetch` calls does not count
against the run's time (each fetch has its own limit).

At most `SANDBOX_WORKERS` runs at once per event loop; more calls wait their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import sys
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from tools.sandbox.fetch import SandboxFetcher

logger = logging.getLogger(__name__)

WORKER_PATH = Path(__file__).resolve().parent / "worker.py"
_HEADER = struct.Struct(">I")
_START_TIMEOUT_SECONDS = 15.0
_RUNS_PER_WORKER = 200  # a worker is replaced after this many runs, however well they went
_RETIRING_ERRORS = frozenset({"memory_limit", "internal"})


class SandboxUnavailableError(Exception):
    """No worker could be started (the interpreter or QuickJS is missing, or start timed out)."""


class _WorkerGoneError(Exception):
    """The worker died before it sent anything for this job (it was dead when given it)."""


class _ProtocolError(Exception):
    """The worker sent something that is not a frame of the protocol: it is not trusted again."""


@dataclass(frozen=True)
class SandboxLimits:
    """One run's limits, read from settings per run so an administrator's change applies."""

    memory_mb: int
    time_seconds: float
    output_chars: int
    fetch_bytes: int
    fetch_timeout_seconds: float
    fetches: int

    @classmethod
    def from_settings(cls) -> SandboxLimits:
        return cls(
            memory_mb=int(settings.SANDBOX_MEMORY_MB),
            time_seconds=float(settings.SANDBOX_TIME_SECONDS),
            output_chars=int(settings.SANDBOX_OUTPUT_CHARS),
            fetch_bytes=int(settings.SANDBOX_FETCH_BYTES),
            fetch_timeout_seconds=float(settings.SANDBOX_FETCH_TIMEOUT_SECONDS),
            fetches=int(settings.SANDBOX_FETCHES),
        )

    @property
    def cpu_seconds(self) -> int:
        """A worker's CPU time over its whole life (RLIMIT_CPU): many runs' worth."""
        return int(max(60.0, self.time_seconds * 20))

    @property
    def frame_bytes(self) -> int:
        """The largest frame a worker may send: a fetch request's body, escaped, or output."""
        return 6 * (self.fetch_bytes + self.output_chars) + 64 * 1024


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    memory_mb: int
    protections: list[str]
    runs: int = 0
    cpu_seconds: float = 0.0

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def send(self, frame: dict[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        data = json.dumps(frame, ensure_ascii=False).encode()
        stdin.write(_HEADER.pack(len(data)) + data)
        await stdin.drain()

    async def receive(self, *, max_bytes: int) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        (length,) = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
        if length > max_bytes:
            raise _ProtocolError(f"a frame of {length} bytes")
        try:
            frame = json.loads(await stdout.readexactly(length))
        except ValueError as error:
            raise _ProtocolError("a frame that is not JSON") from error
        if not isinstance(frame, dict):
            raise _ProtocolError("a frame that is not an object")
        return frame


@dataclass
class _Run:
    """What the parent gathers while a run goes on: the console, and time spent in fetches."""

    limits: SandboxLimits
    console: list[str] = field(default_factory=list)
    console_chars: int = 0
    truncated: bool = False
    fetching_seconds: float = 0.0

    def log(self, level: str, line: str) -> None:
        room = self.limits.output_chars - self.console_chars
        if room <= 0:
            self.truncated = True
            return
        text = line if level in ("log", "info", "debug") else f"[{level}] {line}"
        if len(text) > room:
            text, self.truncated = text[:room], True
        self.console.append(text)
        self.console_chars += len(text)

    def outcome(self, report: dict[str, Any], *, started: float) -> dict[str, Any]:
        outcome: dict[str, Any] = {"ok": bool(report.get("ok"))}
        if outcome["ok"]:
            outcome["result"] = report.get("value")
        else:
            outcome["error"] = report.get("error") or {"type": "internal", "message": "failed"}
        outcome["console"] = "\n".join(self.console)
        if self.truncated or report.get("truncated"):
            outcome["truncated"] = True
        outcome["ms"] = round((time.monotonic() - started) * 1000, 1)
        return outcome


def _limit_error(type_: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"type": type_, "message": message}}


class SandboxPool:
    """Prestarted workers for one event loop, at most `size` runs at once."""

    def __init__(self, *, size: int) -> None:
        self.size = max(1, size)
        self._semaphore = asyncio.Semaphore(self.size)
        self._idle: list[_Worker] = []
        self._starting: set[asyncio.Task[None]] = set()
        self._reaping: set[asyncio.Task[Any]] = set()
        self._busy = 0
        self._closed = False

    # -- workers -------------------------------------------------------------------------------

    async def _spawn(self, limits: SandboxLimits) -> _Worker:
        options = json.dumps({"memory_mb": limits.memory_mb, "cpu_seconds": limits.cpu_seconds})
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",  # no PYTHON* variables, no user site, not the current directory
                "-B",
                str(WORKER_PATH),
                options,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={},
                cwd="/",
                close_fds=True,
                start_new_session=True,
            )
        except OSError as error:
            raise SandboxUnavailableError(f"the sandbox cannot start: {error}") from error
        worker = _Worker(process=process, memory_mb=limits.memory_mb, protections=[])
        try:
            ready = await asyncio.wait_for(
                worker.receive(max_bytes=64 * 1024), timeout=_START_TIMEOUT_SECONDS
            )
        except (TimeoutError, asyncio.IncompleteReadError, _ProtocolError) as error:
            self._kill(worker)
            raise SandboxUnavailableError("the sandbox did not start") from error
        except BaseException:
            self._kill(worker)
            raise
        if ready.get("op") != "ready":
            self._kill(worker)
            raise SandboxUnavailableError("the sandbox did not start")
        worker.protections = [str(item) for item in ready.get("protections") or []]
        return worker

    def _kill(self, worker: _Worker) -> None:
        """Kill a worker at once and reap it in the background (its memory goes with it)."""
        if worker.alive:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
        task = asyncio.get_running_loop().create_task(worker.process.wait())
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    def warm(self, limits: SandboxLimits | None = None) -> None:
        """Start workers in the background until `size` are ready or starting."""
        limits = limits or SandboxLimits.from_settings()
        missing = self.size - len(self._idle) - len(self._starting) - self._busy
        for _ in range(max(0, missing)):
            task = asyncio.get_running_loop().create_task(self._start_idle(limits))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _start_idle(self, limits: SandboxLimits) -> None:
        try:
            worker = await self._spawn(limits)
        except SandboxUnavailableError:
            logger.exception("a sandbox worker did not start")
            return
        if self._closed or len(self._idle) >= self.size:
            self._kill(worker)
        else:
            self._idle.append(worker)

    async def _take(self, limits: SandboxLimits) -> _Worker:
        while True:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive and worker.memory_mb == limits.memory_mb:
                    return worker
                self._kill(worker)
            if not self._starting:
                return await self._spawn(limits)
            await asyncio.wait(set(self._starting), return_when=asyncio.FIRST_COMPLETED)

    # -- runs ----------------------------------------------------------------------------------

    async def run(self, code: str, *, limits: SandboxLimits | None = None) -> dict[str, Any]:
        """Run code; return its outcome (`ok`, `result` or `error`, `console`, `truncated`)."""
        limits = limits or SandboxLimits.from_settings()
        async with self._semaphore:
            try:
                return await self._run_on_a_worker(code, limits, retry=True)
            except _WorkerGoneError:
                # The worker died before it said anything (killed while idle, most likely):
                # once more on another, and then whatever happens is the outcome.
                return await self._run_on_a_worker(code, limits, retry=False)

    async def _run_on_a_worker(
        self, code: str, limits: SandboxLimits, *, retry: bool
    ) -> dict[str, Any]:
        self.warm(limits)
        worker = await self._take(limits)
        self._busy += 1
        fetcher = SandboxFetcher(
            max_fetches=limits.fetches,
            max_bytes=limits.fetch_bytes,
            timeout_seconds=limits.fetch_timeout_seconds,
        )
        keep = False
        try:
            outcome, keep = await self._drive(worker, code, limits, fetcher, retry=retry)
        finally:
            self._busy -= 1
            if keep and not self._closed:
                self._idle.append(worker)
            else:  # stopped, overran, out of memory, died, or cancelled mid-run
                self._kill(worker)
                if not self._closed:
                    self.warm(limits)
            await fetcher.close()
        return outcome

    async def _drive(
        self,
        worker: _Worker,
        code: str,
        limits: SandboxLimits,
        fetcher: SandboxFetcher,
        *,
        retry: bool,
    ) -> tuple[dict[str, Any], bool]:
        loop = asyncio.get_running_loop()
        run = _Run(limits=limits)
        started = time.monotonic()
        job = {
            "op": "run",
            "code": code,
            "memory_mb": limits.memory_mb,
            "output_chars": limits.output_chars,
            "fetches": limits.fetches,
            "time_seconds": limits.time_seconds,
        }
        try:
            await worker.send(job)
        except ConnectionError as error:
            if retry:
                raise _WorkerGoneError from error
            message = "The sandbox stopped before the code could run."
            return run.outcome(_limit_error("crashed", message), started=started), False
        frames = 0
        began = loop.time()
        while True:
            remaining = limits.time_seconds - (loop.time() - began - run.fetching_seconds)
            try:
                if remaining <= 0:
                    raise TimeoutError
                frame = await asyncio.wait_for(
                    worker.receive(max_bytes=limits.frame_bytes), timeout=remaining
                )
            except TimeoutError:
                message = f"The code ran longer than {limits.time_seconds:g} s and was stopped."
                return run.outcome(_limit_error("time_limit", message), started=started), False
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                if retry and frames == 0:
                    raise _WorkerGoneError from error
                # The worker died: the address-space limit, the CPU limit, or a crash.
                message = "The sandbox stopped (it ran out of memory or crashed)."
                return run.outcome(_limit_error("crashed", message), started=started), False
            except _ProtocolError as error:
                logger.warning("a sandbox worker broke the protocol: %s", error)
                message = "The sandbox misbehaved and was stopped."
                return run.outcome(_limit_error("crashed", message), started=started), False
            frames += 1
            op = frame.get("op")
            if op == "log":
                run.log(str(frame.get("level", "log")), str(frame.get("line", "")))
            elif op == "fetch":
                fetch_started = loop.time()
                answer = await fetcher.fetch(frame.get("request"))
                run.fetching_seconds += loop.time() - fetch_started
                try:
                    await worker.send({"op": "fetch-answer", "answer": answer})
                except ConnectionError:
                    message = "The sandbox stopped while a fetch was answered."
                    return run.outcome(_limit_error("crashed", message), started=started), False
            elif op == "done":
                report = frame.get("report")
                if not isinstance(report, dict):
                    report = _limit_error("internal", "The sandbox sent no report.")
                worker.runs += 1
                worker.cpu_seconds = float(frame.get("cpu") or 0.0)
                error_type = (report.get("error") or {}).get("type")
                keep = (
                    error_type not in _RETIRING_ERRORS
                    and worker.runs < _RUNS_PER_WORKER
                    and worker.cpu_seconds + limits.time_seconds + 1 < limits.cpu_seconds
                )
                return run.outcome(report, started=started), keep
            else:
                logger.warning("a sandbox worker sent an unknown frame %r", op)
                message = "The sandbox misbehaved and was stopped."
                return run.outcome(_limit_error("crashed", message), started=started), False

    async def close(self) -> None:
        """Kill every worker and wait for them (at shutdown, or at the end of a test)."""
        self._closed = True
        for task in list(self._starting):
            task.cancel()
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        while self._idle:
            self._kill(self._idle.pop())
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SandboxPool] = (
    weakref.WeakKeyDictionary()
)


def sandbox_pool() -> SandboxPool:
    """This event loop's pool (made, and warmed, on first use)."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None or pool._closed:
        pool = _pools[loop] = SandboxPool(size=int(settings.SANDBOX_WORKERS))
        pool.warm()
    return pool


async def sandbox_pool_close() -> None:
    """Close this event loop's pool, if it has one."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()
