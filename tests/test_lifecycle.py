"""The server's start: long-lived objects leave the garbage collector's sight (vero/lifecycle)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SERVER_START = """
import gc
import vero.asgi  # what a server imports: Django set up, every app and URL loaded
import models_registry.llm
from vero import lifecycle

loaded = []
models_registry.llm.llm_preload = lambda: loaded.append([[i] for i in range(50_000)])
tracked = len(gc.get_objects())
lifecycle._preload_then_freeze()
print(tracked, gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_what_the_server_loaded_is_frozen_after_the_preload() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SERVER_START],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "vero.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    tracked, frozen, left = (int(value) for value in result.stdout.split())
    # Everything from the imports and the preload (50,000 lists) is frozen; a full collection
    # now walks only what came after.
    assert frozen >= tracked + 50_000
    assert left < 1_000
