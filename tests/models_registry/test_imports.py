"""LiteLLM stays out of settings, `manage.py check`, `migrate` and pages that call no model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

_RUN_AND_CHECK = """
import runpy, sys
sys.argv = ["manage.py", *{args!r}]
try:
    runpy.run_path("manage.py", run_name="__main__")
except SystemExit as exit:
    if exit.code:
        raise
heavy = sorted(name for name in sys.modules if name == "litellm" or name.startswith("litellm."))
assert not heavy, f"imported: {{heavy[:5]}}"
print("LITELLM NOT IMPORTED")
"""


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "vero.settings", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_importing_the_settings_does_not_import_litellm() -> None:
    result = _run("import sys, vero.settings; assert 'litellm' not in sys.modules; print('ok')")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_manage_py_check_does_not_import_litellm() -> None:
    result = _run(_RUN_AND_CHECK.format(args=["check"]))

    assert result.returncode == 0, result.stderr
    assert "LITELLM NOT IMPORTED" in result.stdout


@pytest.mark.django_db
def test_manage_py_migrate_does_not_import_litellm() -> None:
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )

    result = _run(_RUN_AND_CHECK.format(args=["migrate", "--noinput"]), {"DATABASE_URL": url})

    assert result.returncode == 0, result.stderr
    assert "LITELLM NOT IMPORTED" in result.stdout


_PAGES = """
import sys, django
django.setup()
from tests.live_server import use_source_static_files
use_source_static_files()
from django.test import Client
client = Client()
for url in ["/", "/settings/", "/api/models", "/c/list", "/healthz", "/accounts/login/"]:
    status = client.get(url, headers={"host": "localhost"}).status_code
    assert status == 200, (url, status)
heavy = sorted(name for name in sys.modules if name == "litellm" or name.startswith("litellm."))
assert not heavy, f"imported: {heavy[:5]}"
print("LITELLM NOT IMPORTED")
"""


@pytest.mark.django_db(transaction=True)
def test_pages_that_call_no_model_do_not_import_litellm() -> None:
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )

    result = _run(_PAGES, {"DATABASE_URL": url})

    assert result.returncode == 0, result.stderr[-2000:]
    assert "LITELLM NOT IMPORTED" in result.stdout
