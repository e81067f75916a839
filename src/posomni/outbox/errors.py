from __future__ import annotations

from posomni.kit.errors import Conflict, NotFound, ValidationFailed


class InvalidOutboxMessage(ValidationFailed):
    code = "invalid_outbox_message"
    default_message = "The outbox message is not valid."


class OutboxMessageNotFound(NotFound):
    code = "outbox_message_not_found"
    default_message = "No outbox message has this id."


class OutboxMessageNotDead(Conflict):
    code = "outbox_message_not_dead"
    default_message = "Only a dead (parked) message can be retried."


class UnknownStore(NotFound):
    code = "unknown_store"
    default_message = "No store has this code."
