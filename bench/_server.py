"""Daphne for the benches: `python -m vero.serve ARGS` on `vero.asgi:application`.

The same server as `make run`'s, with one difference: static file URLs resolve through the
plain storage (as in tests/live_server.py), so pages render without a collectstatic manifest,
which `make bench` does not build.

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
    from django.conf import settings

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

    from vero.serve import serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
