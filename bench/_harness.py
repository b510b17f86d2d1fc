"""What every bench shares: its output lines, its timing, a scratch database, the fake
provider, and a run that sets them up and tears them down (`bench_main`).

Why one module: the benches are compared over time, so they must print, time, set up and tear
down the same way; a helper written once here cannot drift between two copies. The servers a
bench starts are in bench/_server.py, an answer read as a guest or directly in bench/_client.py.

Output: one `name: value unit` line per figure (`report`, or `figure` for a bare line),
`# ...` lines for everything else. A figure with a target is followed by
`# target <target>: met|missed`.

Importing this module puts the repository on sys.path and selects Vero's settings, as every
bench needs before it imports the app.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vero.settings")

import psycopg  # noqa: E402
from _server import ServerGroup  # noqa: E402
from psycopg import sql  # noqa: E402

# -- output -------------------------------------------------------------------------------------

WHOLE_UNITS = ("count", "bytes", "rows", "statements")


def figure(name: str, value: float, unit: str, *, digits: int) -> None:
    """Print one figure line: `name: value unit`."""
    print(f"{name}: {value:.{digits}f} {unit}", flush=True)


def _digits(unit: str) -> int:
    if unit in WHOLE_UNITS:
        return 0
    return 2 if unit == "ratio" else 1


def report(
    name: str,
    value: float,
    unit: str,
    target: str | None = None,
    met: bool | None = None,
    note: str = "",
    *,
    digits: int | None = None,
) -> None:
    """Print a figure, then whether it met its target (with the note), or the note alone."""
    figure(name, value, unit, digits=_digits(unit) if digits is None else digits)
    if target is not None:
        outcome = "met" if met else "missed"
        comment(f"target {target}: {outcome}{' ' + note if note else ''}")
    elif note:
        comment(note)


def comment(text: str) -> None:
    print(f"# {text}", flush=True)


def statements_difference(
    first: Sequence[str], second: Sequence[str], *, words: int, chars: int
) -> None:
    """Comment where two runs' SQL statements first differ (in their first `words` words)."""
    for index, (a, b) in enumerate(zip(first, second, strict=False)):
        if a.split()[:words] != b.split()[:words]:
            comment(f"statements differ from #{index}: {a[:chars]!r} / {b[:chars]!r}")
            return


# -- timing -------------------------------------------------------------------------------------


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def median_ms(seconds: Sequence[float]) -> float:
    return statistics.median(seconds) * 1000


def per_call_seconds(call: Callable[[], object], calls: int = 1) -> float:
    """Seconds per call of `calls` calls in a row."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def median_per_call_seconds(
    call: Callable[[], object], *, rounds: int, calls: int = 1, warm_up: bool = False
) -> float:
    """The median over `rounds` of seconds per call, after one untimed call when `warm_up`."""
    if warm_up:
        call()
    return statistics.median(per_call_seconds(call, calls) for _ in range(rounds))


@dataclass(frozen=True)
class Paired:
    """Ours against the baseline, timed in alternating rounds (seconds per call)."""

    ours: float  # median
    baseline: float  # median
    ratio: float  # median of the rounds' ratios


def paired_with_baseline(
    ours: Callable[[], object],
    baseline: Callable[[], object],
    *,
    rounds: int,
    calls: int = 1,
    warm_up: bool = False,
) -> Paired:
    """Time ours and the baseline in alternating rounds, so that load from other processes on
    this shared machine hits both alike; after one untimed call of each when `warm_up`."""
    if warm_up:
        ours()
        baseline()
    ours_times: list[float] = []
    baseline_times: list[float] = []
    for _ in range(rounds):
        ours_times.append(per_call_seconds(ours, calls))
        baseline_times.append(per_call_seconds(baseline, calls))
    ratios = [a / b for a, b in zip(ours_times, baseline_times, strict=True)]
    return Paired(
        ours=statistics.median(ours_times),
        baseline=statistics.median(baseline_times),
        ratio=statistics.median(ratios),
    )


def timed_runs(run: Callable[[], float], *, runs: int, budget: float) -> list[float]:
    """Call `run` (it returns its own measured seconds) up to `runs` times, at least once,
    and again only while one more call (as long as the slowest so far, its untimed part
    included) still ends within `budget` seconds."""
    results: list[float] = []
    started = time.perf_counter()
    slowest = 0.0
    while len(results) < runs and (not results or time.perf_counter() - started + slowest < budget):
        began = time.perf_counter()
        results.append(run())
        slowest = max(slowest, time.perf_counter() - began)
    return results


# -- the scratch database -----------------------------------------------------------------------


def url_with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def conninfo_of(url: str) -> str:
    # psycopg wants postgresql:// or postgres://; Django's env also accepts other schemes.
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


def database_create(conninfo: str, name: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_drop(conninfo: str, name: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def base_database_url() -> str | None:
    """DATABASE_URL, or None after saying it is missing (the bench then exits with 1)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is not set (make bench sets it through scripts/devdb.py)")
    return url or None


@dataclass(frozen=True)
class Scratch:
    name: str
    url: str

    @property
    def conninfo(self) -> str:
        return conninfo_of(self.url)


@contextlib.contextmanager
def scratch_database(base_url: str, prefix: str = "vero_bench") -> Iterator[Scratch]:
    """A database `<prefix>_<pid>` next to `base_url`'s, migrated in a subprocess, with
    DATABASE_URL and Django set up on it; dropped at the end, even on failure."""
    name = f"{prefix}_{os.getpid()}"
    url = url_with_db(base_url, name)
    database_create(conninfo_of(base_url), name)
    try:
        env = {**os.environ, "DATABASE_URL": url}
        command = [sys.executable, "manage.py", "migrate", "-v0"]
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        os.environ["DATABASE_URL"] = url
        import django

        django.setup()
        yield Scratch(name=name, url=url)
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        database_drop(conninfo_of(base_url), name)


# -- the fake provider --------------------------------------------------------------------------

WORDS = ("the ", "quick ", "brown ", "fox ", "jumps ", "over ", "a ", "lazy ", "dog. ")


def tokens(count: int) -> list[str]:
    return [WORDS[index % len(WORDS)] for index in range(count)]


def script(count: int, *, delay: float = 0.0, initial_delay: float = 0.0) -> Any:
    """A fake provider's answer of `count` tokens, `delay` apart, the first after
    `initial_delay`."""
    from tests.fake_provider import Script

    return Script(text=tokens(count), delay=delay, initial_delay=initial_delay)


@contextlib.contextmanager
def fake_provider(*, bucket: int) -> Iterator[Any]:
    """The fake provider in this process (a thread), registered as the fake model for every
    tier, each tier's bucket holding and refilling `bucket` tokens (so it never refuses)."""
    from django.db import connection

    from models_registry.models import Tier
    from tests.fake_provider import FakeProvider
    from tests.helpers import fake_model_register

    fake = FakeProvider().start()
    try:
        fake_model_register(fake.base_url)
        Tier.objects.update(bucket_capacity=bucket, refill_amount=bucket)
        connection.close()
        yield fake
    finally:
        fake.stop()


# -- a bench's run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What a bench runs on: its scratch database, the servers it starts on it, and the fake
    provider (None when the bench asked for none)."""

    scratch: Scratch
    servers: ServerGroup
    fake: Any


def bench_main(
    body: Callable[[Setup], None],
    *,
    prefix: str = "vero_bench",
    fake_bucket: int | None = None,
    keep_logs_on_failure: bool = True,
) -> int:
    """Run `body` on a scratch database (see `scratch_database`), with the fake provider when
    `fake_bucket` is given; then stop its servers, drop the database and print the total time.
    Returns the exit status: 1 when DATABASE_URL is missing."""
    base_url = base_database_url()
    if base_url is None:
        return 1
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(scratch_database(base_url, prefix))
        fake = None
        if fake_bucket is not None:
            fake = stack.enter_context(fake_provider(bucket=fake_bucket))
        group = ServerGroup(scratch.name, scratch.url, stack, keep_logs_on_failure)
        body(Setup(scratch=scratch, servers=group, fake=fake))
        comment(f"total {time.perf_counter() - began:.0f} s")
    return 0
