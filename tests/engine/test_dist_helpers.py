"""The rendezvous store of the multi-process tests holds its port for the whole run."""

from __future__ import annotations

import socket

import pytest
from dist_helpers import HOST, hosted_store


def test_the_store_holds_its_port_until_the_block_ends() -> None:
    with hosted_store() as env:
        port = int(env["MASTER_PORT"])
        assert port > 0 and env["MASTER_ADDR"] == HOST
        assert env["TORCHELASTIC_USE_AGENT_STORE"] == "True"
        # the race of the old "bind port 0, close, pass the number" helper: here nobody
        # can take the port between choosing it and the workers using it
        with socket.socket() as s, pytest.raises(OSError):
            s.bind((HOST, port))
