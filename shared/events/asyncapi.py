"""AsyncAPI 3.0 document of every event, generated from the payload models.

    python -m shared.events.asyncapi > docs/asyncapi.yaml

`tests/shared/test_contracts.py` fails when the committed document drifts from the code.
"""

from __future__ import annotations

from typing import Any

import yaml

from shared.events.payloads import ALL_PAYLOADS, TOPICS, dlq_topic

PRODUCERS = {
    "ingest.dossiers": "ingest",
    "scoring.snapshots": "scoring",
    "tasks.remediation": "tasks",
}
CONSUMERS = {
    "ingest.dossiers": ["scoring"],
    "scoring.snapshots": ["tasks"],
    "tasks.remediation": ["scoring"],
}


def _message_name(event_type: str) -> str:
    return event_type.removeprefix("vn.cchc.").replace(".", "_")


def build() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channel_messages: dict[str, dict[str, Any]] = {t: {} for t in TOPICS}
    for model in ALL_PAYLOADS:
        schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
        name = _message_name(model.event_type)
        messages[name] = {
            "name": model.event_type,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().split("\n")[0],
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "the unit id"}}},
            "x-ce-type": model.event_type,
        }
        channel_messages[model.topic][name] = {"$ref": f"#/components/messages/{name}"}
    schemas["CloudEventsHeaders"] = {
        "type": "object",
        "description": "CloudEvents 1.0 Kafka binary mode attributes.",
        "required": ["ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time"],
        "properties": {
            "ce_id": {"type": "string", "description": "Unique per source; the dedup key."},
            "ce_source": {"type": "string", "examples": ["/cchc-monitor/ingest"]},
            "ce_type": {"type": "string", "examples": ["vn.cchc.ingest.dossiers.changed.v1"]},
            "ce_specversion": {"const": "1.0"},
            "ce_time": {"type": "string", "format": "date-time"},
            "ce_subject": {"type": "string"},
            "content-type": {"const": "application/json"},
        },
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        cid = topic.replace(".", "_")
        channels[cid] = {
            "address": topic,
            "description": f"Published by {PRODUCERS[topic]} through its outbox; "
            f"consumed by {', '.join(CONSUMERS[topic])}. Key: the unit id.",
            "messages": channel_messages[topic],
        }
        channels[cid + "_dlq"] = {
            "address": dlq_topic(topic),
            "description": "Dead letters: the original message plus dlq_reason, "
            "dlq_original_topic, dlq_original_partition, dlq_original_offset, dlq_consumer.",
        }
        operations[f"{PRODUCERS[topic]}_publishes_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
        }
        for consumer in CONSUMERS[topic]:
            operations[f"{consumer}_consumes_{cid}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{cid}"},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "CCHC Monitor events",
            "version": "1.0.0",
            "description": "Events joining ingest → scoring → tasks (and tasks → scoring). "
            "CloudEvents 1.0 in Kafka binary mode; consumers ignore unknown fields; a breaking "
            "change gets a new versioned type.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.items())), "messages": messages},
    }


def render() -> str:
    return yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    print(render(), end="")
