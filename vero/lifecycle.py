"""Start this process's background machinery with the server, not at import time."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope


class StartWorkersOnFirstCall:
    """ASGI wrapper: the first connection makes the server's loop the generation loop (with
    its reaper) and imports LiteLLM in the background.

    Daphne has no lifespan events; the first call (a request or a socket) is the earliest
    moment we know we are a server, so commands and imports never start threads.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._started = False
        self._lock = threading.Lock()

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if not self._started:
            with self._lock:
                if not self._started:
                    self._started = True
                    self._start()
        await self.app(scope, receive, send)

    @staticmethod
    def _start() -> None:
        from django.conf import settings

        from chats.generation import worker_start

        worker_start(asyncio.get_running_loop())
        if settings.LLM_PRELOAD:
            from models_registry.llm import llm_preload

            threading.Thread(target=llm_preload, name="vero-llm-preload", daemon=True).start()
