"""Rendezvous for the multi-process tests without a free-port race.

Picking a "free" port in the parent (bind to port 0, read it, close the socket) and
handing it to the workers leaves a window in which another process can take the port:
on a busy CI machine rank 0 then fails to start its store. Here the parent hosts the
``TCPStore`` itself on a port the OS assigns to that very store, as ``torchrun``'s
agent does, and the workers join it as clients (``TORCHELASTIC_USE_AGENT_STORE``, the
variable torchrun sets for the same purpose). The port is held from before the workers
start until they have finished, so nobody else can take it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch.distributed as dist

HOST = "127.0.0.1"


@contextmanager
def hosted_store() -> Iterator[dict[str, str]]:
    """Host a ``TCPStore`` on an OS-assigned port for the duration of the block.

    Yields:
        The environment a worker sets before ``init_process_group`` with the ``env://``
        method (what the trainer's ``init_distributed`` uses): ``MASTER_ADDR``,
        ``MASTER_PORT`` (the store's port) and ``TORCHELASTIC_USE_AGENT_STORE=True``.
    """
    store = dist.TCPStore(HOST, 0, is_master=True, wait_for_workers=False)
    try:
        yield {
            "MASTER_ADDR": HOST,
            "MASTER_PORT": str(store.port),
            "TORCHELASTIC_USE_AGENT_STORE": "True",
        }
    finally:
        del store
