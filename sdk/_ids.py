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

_bits = random.getrandbits


# The version (4) and RFC 4122 variant bits of a UUID, as uuid.UUID(version=4) sets them.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> str:
    """A fresh random UUID (version 4), as text (formatted here: building a
    ``uuid.UUID`` to print it cost twice as much, at several ids per workflow)."""
    h = f"{(_bits(128) & _CLEAR) | _SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
