"""Random ids (version 4 UUIDs as text) without a system call for each.

``uuid.uuid4()`` reads ``os.urandom``: a ``getrandom`` system call that lets go of
the GIL. On a busy worker the event loop handed the GIL to another thread and
waited to take it back for every command it sent: ``uuid4`` was 5% of the bench
process's GIL time at 200 workflows in flight. Command and request ids must be
unique, not unguessable (anyone who may write the topics can write any record),
so they come from ``random``: 122 random bits like ``uuid4``, from a generator
seeded by ``os.urandom`` at import and again in every forked child.
"""

from __future__ import annotations

import random
from uuid import UUID

_bits = random.getrandbits


def new_id() -> str:
    """A fresh random UUID (version 4), as text."""
    return str(UUID(int=_bits(128), version=4))
