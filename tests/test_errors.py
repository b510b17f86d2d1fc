"""Every refusal in the project speaks one vocabulary: a unique code, a kind, and a status."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from django.apps import apps
from django.conf import settings

from vero.errors import ErrorKind, VeroError, http_status

# Importing the modules a request may not have imported yet (probes, the URL guard, …) is
# what lets `__subclasses__` see every error class.
_SKIPPED = (".migrations", ".management")


def _import_all_app_modules() -> None:
    for config in apps.get_app_configs():
        if Path(config.path).parent != Path(settings.BASE_DIR):
            continue  # Django's and third parties' apps
        for module in pkgutil.walk_packages([config.path], prefix=f"{config.name}."):
            if not any(part in module.name for part in _SKIPPED):
                importlib.import_module(module.name)


def _subclasses(cls: type[VeroError]) -> list[type[VeroError]]:
    found: list[type[VeroError]] = []
    for subclass in cls.__subclasses__():
        found += [subclass, *_subclasses(subclass)]
    return found


def _project_errors() -> list[type[VeroError]]:
    _import_all_app_modules()
    return [error for error in _subclasses(VeroError) if not error.__module__.startswith("tests")]


def test_the_apps_define_their_errors_as_vero_errors() -> None:
    names = {error.__name__ for error in _project_errors()}
    assert {
        "ResolutionError",
        "UnknownModelError",
        "LLMError",
        "ProviderRateLimitError",
        "ByokInputError",
        "UnsafeURLError",
        "EndpointUnsafeError",
        "EndpointRequestRefusedError",
    } <= names


def test_every_error_has_a_code_of_its_own() -> None:
    errors = _project_errors()
    codes = [error.code for error in errors]
    duplicated = sorted({code for code in codes if codes.count(code) > 1})
    assert not duplicated, f"codes used by more than one error: {duplicated}"
    assert VeroError.code not in codes


def test_every_error_has_a_kind_that_maps_to_a_status() -> None:
    for error in _project_errors():
        assert isinstance(error.kind, ErrorKind), error
        assert 400 <= http_status(error.__new__(error)) <= 599, error


def test_every_error_has_a_message_to_show_by_default() -> None:
    for error in _project_errors():
        assert error.default_message.strip(), error
