"""Validation of the user-chosen parts of topic and consumer-group names.

Kafka accepts topic names of at most 249 characters drawn from ``[A-Za-z0-9._-]``.
Cadenza builds every name as ``<namespace>.<kind>[.<part>]``, so the parts a user
chooses (task queues, store names) are held to a stricter rule: no ``.``, which
keeps a topic name parseable back into its parts (``describe`` and ``verify``
find a namespace's task-queue topics that way), and which avoids Kafka's
``.``/``_`` metric-name collisions between two queues such as ``a.b`` and ``a_b``.
"""

from __future__ import annotations

import re

from cadenza.exceptions import CadenzaError

__all__ = [
    "MAX_PART_LENGTH",
    "MAX_TOPIC_NAME_LENGTH",
    "TopicNameError",
    "validate_part",
    "validate_store",
    "validate_task_queue",
]

MAX_TOPIC_NAME_LENGTH = 249
"""Kafka's limit on the length of a topic name."""

MAX_PART_LENGTH = 160
"""Longest task-queue or store name.

The namespace is at most 63 characters and the longest fixed part is
``activity-tasks.`` (15), so 63 + 1 + 15 + 160 = 239 stays under Kafka's 249
whatever the namespace: a queue name valid in one namespace is valid in all.
"""

_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

_ALLOWED = (
    "letters, digits, '_' or '-', starting with a letter or digit, "
    f"at most {MAX_PART_LENGTH} characters"
)


class TopicNameError(CadenzaError, ValueError):
    """A task-queue, store or role name cannot be part of a Kafka topic or group name."""


def validate_part(value: str, *, what: str) -> str:
    """Check that ``value`` can be the user-chosen last part of a topic name.

    Args:
        value: The candidate name.
        what: What the name is ("task queue", "store"), used in the error message.

    Returns:
        ``value`` unchanged.

    Raises:
        TopicNameError: ``value`` is empty, too long, or has a character Kafka
            would reject or that Cadenza reserves; the message lists what is allowed.
    """
    if not isinstance(value, str):
        raise TopicNameError(f"{what} name must be a string, not {type(value).__name__}")
    if not value:
        raise TopicNameError(f"{what} name is empty: use {_ALLOWED}")
    if len(value) > MAX_PART_LENGTH:
        raise TopicNameError(
            f"{what} name {value[:20]!r}... is {len(value)} characters long: use {_ALLOWED}"
        )
    if not _PART_RE.match(value):
        hint = " ('.' separates the parts of Cadenza's topic names)" if "." in value else ""
        raise TopicNameError(
            f"{what} name {value!r} is not usable in a topic name{hint}: use {_ALLOWED}"
        )
    return value


def validate_task_queue(queue: str) -> str:
    """Check a task-queue name; see :func:`validate_part` for the rule.

    Raises:
        TopicNameError: the name is not allowed.
    """
    return validate_part(queue, what="task queue")


def validate_store(store: str) -> str:
    """Check a state-store name; see :func:`validate_part` for the rule.

    Raises:
        TopicNameError: the name is not allowed.
    """
    return validate_part(store, what="store")
