"""Cadenza's stream processors: the workflow engine (with its timer service) and the
visibility projection.

Run them with ``cadenza processors run``; any number of instances share the
partitions of ``commands`` through one consumer group.
"""
