"""Payment failures beyond the port's own (`gateway.py`): card readers, the processor's refusals, webhooks."""

from __future__ import annotations

from posomni.kit.errors import NotFound, PermissionDenied, PosError, ServiceUnavailable, ValidationFailed
from posomni.payments.gateway import PaymentError


class ReaderOffline(PaymentError, ServiceUnavailable):
    code = "card_reader_offline"
    default_message = "The card reader is offline: check its power and network, or take another tender."


class ReaderBusy(PaymentError):
    status_code = 409
    code = "card_reader_busy"
    default_message = "The card reader is busy with another payment: cancel it on the register first."


class ReaderUnknown(PaymentError, NotFound):
    code = "card_reader_unknown"
    default_message = "The processor does not know this card reader: pair the register's reader again."


class ProcessorRejected(PaymentError):
    """The processor refused a request for a reason the cashier cannot fix (a setup or programming problem);
    the server log has the processor's request id and its explanation."""

    status_code = 502
    code = "processor_rejected"
    default_message = "The card processor refused the request. Take another tender; the details are logged."


class IdempotencyConflict(PaymentError):
    status_code = 409
    code = "idempotency_key_reused"
    default_message = "This payment step was already sent with different details."


class UnknownTestCard(PaymentError, ValidationFailed):
    code = "unknown_test_card"
    default_message = "Not one of the test cards."


class DevelopmentOnly(PermissionDenied):
    code = "development_only"
    default_message = "This developer tool is not available in production."


class WebhookNotConfigured(ServiceUnavailable):
    code = "webhook_not_configured"
    default_message = "Stripe webhooks are not set up on this server (STRIPE_WEBHOOK_SECRET)."


class WebhookSignatureMissing(PosError):
    code = "webhook_signature_missing"
    default_message = "The Stripe-Signature header is missing."


class WebhookSignatureInvalid(PosError):
    code = "webhook_signature_invalid"
    default_message = "The webhook signature does not match, or is too old."


class WebhookPayloadInvalid(PosError):
    code = "webhook_payload_invalid"
    default_message = "The webhook body is not a Stripe event."


class WebhookProcessingFailed(PosError):
    """The event is kept (unprocessed, with the error) and Stripe delivers it again later; so does
    `posomni payments webhooks retry`."""

    status_code = 500
    code = "webhook_processing_failed"
    default_message = "The event was stored but could not be processed; it will be processed again."
    keeps_records = True


class ReconciliationUnsupported(PosError):
    status_code = 409
    code = "reconciliation_unsupported"
    default_message = "This card processor keeps no record to reconcile against (only Stripe does)."
