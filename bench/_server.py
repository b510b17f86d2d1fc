"""Daphne for the benches: `python -m vero.serve ARGS` on `vero.asgi:application`.

The same server as `make run`'s, with one difference: static files are served from the source
folders through the finders (as in tests/live_server.py), so pages render, and their scripts
load in the browser phase, without the collectstatic `make bench` does not run.

Usage: python bench/_server.py -b 127.0.0.1 -p PORT vero.asgi:application
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vero.settings")


def main(argv: list[str]) -> None:
    import django

    django.setup()
    from tests.live_server import use_source_static_files

    use_source_static_files()

    from vero.serve import serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
