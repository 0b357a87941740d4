"""Regenerates tests/conformance/schemas/ from the Genesys Cloud Python SDK's models.

Run from the repository root:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install purecloudplatformclientv2==269.0.0 \
        && /tmp/v/bin/python tests/conformance/generate_schemas.py

For each body the simulator sends, the SDK model's `swagger_types` (property types) and
`attribute_map` (JSON names) are walked into nested models, `list[X]` and `dict(str, X)`.
A property is required where its setter refuses `None`, and a string's allowed values are
the setter's `allowed_values = [...]`. Every object gets `additionalProperties: false`.
The SDK maps unknown enum values to "outdated_sdk_version" instead of failing; the
schemas do not: an unknown value is a difference.
"""

import inspect
import json
import re
import sys
from importlib import metadata
from pathlib import Path

import PureCloudPlatformClientV2 as sdk

PACKAGE = "purecloudplatformclientv2"
# The SDK version the checked-in schemas come from; moving to another is a reviewed change
# (here, in the docstring and in README.md).
PINNED = "269.0.0"
OUT = Path(__file__).resolve().parent / "schemas"

# Schema file name -> SDK model of that body. Notification topics are named after the
# topic pattern they cover; REST answers after the endpoint.
BODIES = {
    "v2.routing.queues.id.conversations": "QueueConversationEventTopicConversation",
    "v2.routing.queues.id.conversations.calls": "QueueConversationCallEventTopicCallConversation",
    "v2.routing.queues.id.conversations.chats": "QueueConversationChatEventTopicChatConversation",
    "v2.routing.queues.id.conversations.messages": "QueueConversationMessageEventTopicMessageConversation",
    "v2.users.id.conversations": "ConversationEventTopicConversation",
    "v2.users.id.conversations.calls": "ConversationCallEventTopicCallConversation",
    "v2.users.id.conversations.chats": "ConversationChatEventTopicChatConversation",
    "v2.users.id.conversations.messages": "ConversationMessageEventTopicMessageConversation",
    "v2.detail.events.conversation.id.customer.start": "CustomerStartDetailEventTopicCustomerStartEvent",
    "v2.detail.events.conversation.id.customer.end": "CustomerEndDetailEventTopicCustomerEndEvent",
    "v2.detail.events.conversation.id.user.start": "UserStartDetailEventTopicUserStartEvent",
    "v2.detail.events.conversation.id.user.end": "UserEndDetailEventTopicUserEndEvent",
    "v2.detail.events.conversation.id.acd.start": "AcdStartDetailEventTopicAcdStartEvent",
    "v2.detail.events.conversation.id.acd.end": "AcdEndDetailEventTopicAcdEndEvent",
    "v2.detail.events.conversation.id.flow.start": "FlowStartDetailEventTopicFlowStartEvent",
    "v2.detail.events.conversation.id.flow.end": "FlowEndDetailEventTopicFlowEndEvent",
    "v2.system.socket_closing": "SystemMessageSystemMessage",
    "POST.api.v2.notifications.channels": "Channel",
    "api.v2.notifications.channels.id.subscriptions": "ChannelTopicEntityListing",
    "GET.api.v2.conversations.id": "Conversation",
    "POST.api.v2.analytics.conversations.details.query": "AnalyticsConversationQueryResponse",
    "api.v2.error": "ErrorBody",
}

PRIMITIVES = {
    "str": {"type": "string"},
    "datetime": {"type": "string"},
    "date": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "object": {},
}
ALLOWED = re.compile(r"allowed_values = (\[.*?\])", re.S)
REFUSES_NONE = re.compile(r"must not be `None`")


def setter_source(cls, attribute):
    prop = getattr(cls, attribute, None)
    if isinstance(prop, property) and prop.fset is not None:
        return inspect.getsource(prop.fset)
    return ""


def type_schema(swagger_type, definitions, enum=None):
    """The schema of one swagger type; models go into `definitions` by name."""
    if swagger_type.startswith("list["):
        items = type_schema(swagger_type[5:-1], definitions, enum)
        return {"type": "array", "items": items}
    if swagger_type.startswith("dict("):
        value_type = swagger_type[5:-1].split(",", 1)[1].strip()
        return {"type": "object", "additionalProperties": type_schema(value_type, definitions)}
    if swagger_type in PRIMITIVES:
        schema = dict(PRIMITIVES[swagger_type])
        if enum is not None:
            schema["enum"] = enum
        return schema
    add_model(swagger_type, definitions)
    return {"$ref": f"#/definitions/{swagger_type}"}


def add_model(name, definitions):
    if name in definitions:
        return
    cls = getattr(sdk, name)
    instance = cls()
    definitions[name] = {}  # reserved first: models may refer to themselves
    properties, required = {}, []
    for attribute, swagger_type in instance.swagger_types.items():
        source = setter_source(cls, attribute)
        allowed = ALLOWED.search(source)
        enum = json.loads(allowed.group(1)) if allowed else None
        json_name = instance.attribute_map[attribute]
        properties[json_name] = type_schema(swagger_type, definitions, enum)
        if REFUSES_NONE.search(source):
            required.append(json_name)
    model = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        model["required"] = required
    definitions[name] = model


def main():
    version = metadata.version(PACKAGE)
    if version != PINNED:
        sys.exit(f"{PACKAGE} {version} is installed; the schemas are pinned to {PINNED}")
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for body, model in BODIES.items():
        definitions = {}
        add_model(model, definitions)
        schema = {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$comment": f"Generated by generate_schemas.py from {PACKAGE} {version}, model {model}.",
            "title": model,
            "$ref": f"#/definitions/{model}",
            "definitions": dict(sorted(definitions.items())),
        }
        path = OUT / f"{body}.json"
        path.write_text(json.dumps(schema, indent=1) + "\n")
        print(f"{path.name}: {model}, {len(definitions)} models")


if __name__ == "__main__":
    main()
