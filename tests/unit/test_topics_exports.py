"""The public face of cadenza.topics is pinned: a change to it is a deliberate one."""

from __future__ import annotations

import inspect

import cadenza.topics

EXPECTED = {
    "ACTIVITY_TASKS",
    "CATALOG",
    "CHANGELOG",
    "COMMANDS",
    "DEAD_LETTERS",
    "HISTORY",
    "REPLIES",
    "STORES",
    "STORE_ENGINE_HISTORY",
    "STORE_ENGINE_TIMERS",
    "STORE_ENGINE_WORKFLOWS",
    "STORE_VISIBILITY",
    "VISIBILITY_REQUESTS",
    "WORKFLOW_TASKS",
    "CleanupPolicy",
    "CreateResult",
    "Drift",
    "DriftKind",
    "TopicAdmin",
    "TopicAdminError",
    "TopicNameError",
    "TopicPlan",
    "TopicRow",
    "TopicSpec",
    "activity_tasks_topic",
    "changelog_partition",
    "changelog_partitions",
    "changelog_topic",
    "commands_topic",
    "consumer_group",
    "dead_letters_topic",
    "format_retention",
    "history_topic",
    "identify",
    "namespace_topics",
    "replies_topic",
    "task_queue_topics",
    "validate_store",
    "validate_task_queue",
    "visibility_requests_topic",
    "workflow_tasks_topic",
}


def test_exports_are_pinned() -> None:
    assert set(cadenza.topics.__all__) == EXPECTED
    assert len(cadenza.topics.__all__) == len(EXPECTED)


def test_every_export_exists_and_public_callables_are_documented() -> None:
    for name in cadenza.topics.__all__:
        value = getattr(cadenza.topics, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert getattr(value, "__doc__", None), name


def test_store_constants() -> None:
    assert cadenza.topics.STORES == (
        "engine-workflows",
        "engine-history",
        "engine-timers",
        "visibility",
    )


def test_errors_share_the_cadenza_root() -> None:
    from cadenza.exceptions import CadenzaError

    assert issubclass(cadenza.topics.TopicAdminError, CadenzaError)
    assert issubclass(cadenza.topics.TopicNameError, CadenzaError)
    # Like SettingsError, a bad name is also a ValueError.
    assert issubclass(cadenza.topics.TopicNameError, ValueError)
