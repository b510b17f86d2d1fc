"""Values the registry's tests share with their fixtures."""

from __future__ import annotations

# The platform key the fake provider requires in these tests.
FAKE_KEY = "sk-fake-provider-key-0042"
