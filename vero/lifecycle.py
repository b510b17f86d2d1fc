"""Start this process's background machinery with the server, not at import time."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

# Named here too: migration 0003 and older code import it from this module.
from vero.process import process_id as process_id


def freeze_long_lived() -> None:
    """Move everything allocated so far (Django, the URL map, LiteLLM and its model map) out of
    the garbage collector's sight.

    Those objects live as long as the process, yet each full collection walked them all: with
    LiteLLM loaded that took 100 to 330 ms, during which no stream was written. Collections now
    walk only what was allocated since.
    """
    gc.freeze()


def _preload_then_freeze() -> None:
    from models_registry.llm import llm_preload

    llm_preload()
    freeze_long_lived()


async def process_retire() -> None:
    """This process is stopping: its realtime listener closes, and the answers it generates
    end with it.

    They are marked `interrupted` with their content so far, and with Redis its liveness key
    goes, so that nobody waits for them: a restart leaves no answer `streaming`.
    """
    from chats import relay
    from chats.reaper import live_answers_interrupt
    from realtime.listener import listener_stop

    await listener_stop()
    await live_answers_interrupt()
    if relay.enabled():
        await relay.process_liveness_drop()


class StartWorkersOnFirstCall:
    """ASGI wrapper: the first connection makes the server's loop the generation loop (with
    its reaper), imports LiteLLM in the background, and then freezes the long-lived objects
    (`freeze_long_lived`).

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

        from chats.worker import worker_start

        worker_start(asyncio.get_running_loop())
        if settings.LLM_PRELOAD:
            threading.Thread(
                target=_preload_then_freeze, name="vero-llm-preload", daemon=True
            ).start()
        else:
            freeze_long_lived()
