"""Daphne for the benches: the handle a bench starts it with, and the child's entry point.

A bench starts servers in child processes (`ServerGroup.start`), each running this file: `python
-m vero.serve ARGS` on `vero.asgi:application`, the same server as `make run`'s, with one
difference: static files are served from the source folders through the finders (as in
tests/live_server.py), so pages render, and their scripts load in the browser phase, without
the collectstatic `make bench` does not run.

Usage (the child): python bench/_server.py -b 127.0.0.1 -p PORT vero.asgi:application
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vero.settings")

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A Daphne server in a child process (this file), its output in `log`."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, so utime (14) and stime (15) are 11 and 12.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def wait(self, timeout: float = 60.0) -> None:
        """Wait until the server answers /healthz (async benches call it in a thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            time.sleep(0.1)
        raise RuntimeError("server did not answer /healthz")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def server_start(
    database_url: str, log: Path, *, env: Mapping[str, str] | None = None, unset: Iterable[str] = ()
) -> Server:
    """Start a server on `database_url`: without this process's REDIS_URL and DEBUG (and the
    `unset` variables), plain-HTTP cookies, and `env` on top."""
    port = free_port()
    removed = {"REDIS_URL", "DEBUG", *unset}
    child_env = {k: v for k, v in os.environ.items() if k not in removed}
    child_env.update(DATABASE_URL=database_url, SECURE_COOKIES="false", **(env or {}))
    command = [sys.executable, str(ROOT / "bench" / "_server.py"), "-b", "127.0.0.1",
               "-p", str(port), "vero.asgi:application"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=out, stderr=out)
    return Server(process=process, port=port, log=log)


@contextlib.contextmanager
def _server_log(path: Path, *, keep_on_failure: bool) -> Iterator[Path]:
    """The path of a server's log: deleted at the end; on failure its tail (without the
    requests answered 200) goes to stderr, and the file stays when `keep_on_failure`."""
    try:
        yield path
    except BaseException:
        if path.exists():
            lines = [line for line in path.read_text().splitlines() if '" 200 ' not in line]
            tail = "\n".join(lines[-60:])
            sys.stderr.write(f"--- server log, without 200 lines ({path}) ---\n{tail}\n")
            if not keep_on_failure:
                path.unlink(missing_ok=True)
        raise
    path.unlink(missing_ok=True)


class ServerGroup:
    """The servers a bench starts on its scratch database `database` (at `url`), each logging
    to /tmp/<database>-server<n>.log; `stack` stops each, then deletes its log (on failure,
    prints the log's tail and, when `keep_logs`, keeps the file)."""

    def __init__(
        self, database: str, url: str, stack: contextlib.ExitStack, keep_logs: bool
    ) -> None:
        self._database = database
        self._url = url
        self._stack = stack
        self._keep_logs = keep_logs
        self._started = 0

    def start(self, *, env: Mapping[str, str] | None = None, unset: Iterable[str] = ()) -> Server:
        log = Path(f"/tmp/{self._database}-server{self._started}.log")
        self._started += 1
        self._stack.enter_context(_server_log(log, keep_on_failure=self._keep_logs))
        server = server_start(self._url, log, env=env, unset=unset)
        self._stack.callback(server.stop)
        return server


# -- the child ---------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    import django

    django.setup()
    from tests.live_server import use_source_static_files

    use_source_static_files()

    from vero.serve import serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
