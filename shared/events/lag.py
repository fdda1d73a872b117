"""Consumer lag and dead-letter depth, read from the broker for `/metrics`.

Every `interval` seconds, for each consumer group this process runs: the group's committed
offsets (an OffsetFetch by a client that names the group but never subscribes, so sampling
never joins the group or triggers a rebalance; tansu drops the admin client's OffsetFetch)
against the end offsets of the same partitions (a group-less consumer's ListOffsets). A partition with nothing committed yet counts from its beginning.
The dead-letter topics' depth (end − beginning offsets) is read the same way, so a poison
event shows on every instance's `/metrics`, not only on the one that dead-lettered it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events.payloads import dlq_topic
from shared.metrics import CONSUMER_LAG, DLQ_DEPTH
from shared.settings import Settings
from shared.workers import PeriodicWorker

log = logging.getLogger("cchc.lag")


@dataclass(frozen=True)
class Group:
    group_id: str
    topics: Sequence[str]


def lag_per_partition(
    committed: dict[TopicPartition, int],
    beginnings: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Messages not yet committed by the group, per partition (never negative)."""
    return {tp: max(0, end - committed.get(tp, beginnings.get(tp, 0))) for tp, end in ends.items()}


class ConsumerLagSampler(PeriodicWorker):
    name = "consumer-lag"

    def __init__(self, settings: Settings, groups: Iterable[Group], interval: float) -> None:
        super().__init__(interval)
        self.settings = settings
        self.groups = list(groups)
        self._reader: AIOKafkaConsumer | None = None

    async def _client(self) -> AIOKafkaConsumer:
        if self._reader is None:
            reader = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                client_id=f"{self.settings.service_name}-lag-reader",
            )
            await reader.start()
            self._reader = reader
        return self._reader

    async def tick(self) -> dict[str, dict[TopicPartition, int]]:
        try:
            return await self._sample()
        except Exception:
            # a broker restart: drop the clients so the next pass reconnects
            await self.close()
            raise

    async def _sample(self) -> dict[str, dict[TopicPartition, int]]:
        reader = await self._client()
        await reader.topics()  # refresh metadata: partitions may have been re-created
        sampled: dict[str, dict[TopicPartition, int]] = {}
        for group in self.groups:
            partitions = [
                TopicPartition(topic, p)
                for topic in group.topics
                for p in sorted(reader.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                continue
            committed = await self._committed(group.group_id, partitions)
            beginnings = await reader.beginning_offsets(partitions)
            ends = await reader.end_offsets(partitions)
            lag = lag_per_partition(committed, beginnings, ends)
            for tp, value in lag.items():
                CONSUMER_LAG.labels(group.group_id, tp.topic, str(tp.partition)).set(value)
            sampled[group.group_id] = lag
        dlqs = sorted({dlq_topic(t) for g in self.groups for t in g.topics})
        dlq_partitions = [
            TopicPartition(topic, p)
            for topic in dlqs
            for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        if dlq_partitions:
            starts = await reader.beginning_offsets(dlq_partitions)
            ends = await reader.end_offsets(dlq_partitions)
            for topic in dlqs:
                depth = sum(ends[tp] - starts[tp] for tp in dlq_partitions if tp.topic == topic)
                DLQ_DEPTH.labels(topic).set(depth)
        return sampled

    async def _committed(
        self, group_id: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets: an OffsetFetch by a consumer that names the group
        but never subscribes, so it never joins it (no rebalance)."""
        fetcher = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            client_id=f"{self.settings.service_name}-lag-offsets",
        )
        await fetcher.start()
        try:
            fetcher.assign(partitions)
            found = {}
            for tp in partitions:
                offset = await fetcher.committed(tp)
                if offset is not None and offset >= 0:
                    found[tp] = offset
            return found
        finally:
            await fetcher.stop()

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                await reader.stop()
            except Exception:
                log.debug("closing the lag reader failed", exc_info=True)
