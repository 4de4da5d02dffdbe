"""The visibility projection: list and count workflows with Temporal's query syntax.

``Visibility`` folds every partition of ``history`` into a RocksDB store with
indexes by status and workflow type, and answers ``VisibilityRequest`` records
from ``visibility-requests`` on ``replies``. ``cadenza processors run`` runs one
beside the engine; tests run it like the engine::

    visibility = Visibility(settings, data_dir=tmp)
    threading.Thread(target=visibility.run).start()
    ...
    visibility.stop()
"""

from ._processor import MetricsAddressError, Visibility, run_visibility
from ._query import Query, QueryError, parse

__all__ = ["MetricsAddressError", "Query", "QueryError", "Visibility", "parse", "run_visibility"]
