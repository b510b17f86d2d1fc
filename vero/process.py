"""Who this process is: an id new at every start, which an answer records as its generator.

A module of its own that imports nothing of Vero: the chats modules that ask (the relay, the
reaper, the models) need not import the server's lifecycle, which starts the chats machinery
and so imports them back.
"""

from __future__ import annotations

import uuid

# Who this process is, for as long as it runs: an answer records the process generating it,
# so a reader can tell an answer whose process is gone (restarted, killed) from a live one.
_PROCESS_ID = uuid.uuid4()


def process_id() -> uuid.UUID:
    """This process's id: new at every start, so after a restart it differs."""
    return _PROCESS_ID
