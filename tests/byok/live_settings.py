"""Settings for a live server in browser tests: Vero's, with the URLs of tests/byok/urls.py."""

from vero.settings import *  # noqa: F403

ROOT_URLCONF = "tests.byok.urls"
