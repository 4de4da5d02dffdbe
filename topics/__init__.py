"""Cadenza's Kafka topics: the catalog of names, partitions, cleanup and retention, and the
admin code that creates and verifies them.

Every topic name is ``<namespace>.<name>``; use the helpers rather than building names::

    from cadenza import Settings
    from cadenza.topics import TopicAdmin, commands_topic, workflow_tasks_topic

    settings = Settings.from_env()
    commands_topic(settings)                    # "cadenza.commands"
    workflow_tasks_topic(settings, "orders")    # "cadenza.workflow-tasks.orders"
    TopicAdmin(settings).create(task_queues=["orders"])
"""

from ._admin import CreateResult, TopicAdmin, TopicAdminError, TopicRow
from ._catalog import (
    ACTIVITY_TASKS,
    CATALOG,
    CHANGELOG,
    COMMANDS,
    DEAD_LETTERS,
    HISTORY,
    REPLIES,
    STORE_ENGINE_HISTORY,
    STORE_ENGINE_TIMERS,
    STORE_ENGINE_WORKFLOWS,
    STORE_VISIBILITY,
    STORES,
    VISIBILITY_REQUESTS,
    WORKFLOW_TASKS,
    CleanupPolicy,
    TopicPlan,
    TopicSpec,
    activity_tasks_topic,
    changelog_partition,
    changelog_partitions,
    changelog_topic,
    commands_topic,
    consumer_group,
    dead_letters_topic,
    history_topic,
    identify,
    namespace_topics,
    replies_topic,
    task_queue_topics,
    visibility_requests_topic,
    workflow_tasks_topic,
)
from ._drift import Drift, DriftKind, format_retention
from ._names import TopicNameError, validate_store, validate_task_queue

__all__ = [
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
]
