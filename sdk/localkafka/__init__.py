"""A local single-node Apache Kafka broker (KRaft) for development, tests and benchmarks.

Example:
    >>> from cadenza import Settings
    >>> from cadenza.localkafka import LocalKafka
    >>> broker = LocalKafka(Settings.from_env())
    >>> info = broker.start()      # fetches the jars once, then starts in a few seconds
    >>> broker.stop()
"""

from cadenza.localkafka._broker import KAFKA_VERSION, BrokerInfo, LocalKafka, LocalKafkaError

__all__ = ["KAFKA_VERSION", "BrokerInfo", "LocalKafka", "LocalKafkaError"]
