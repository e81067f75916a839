from __future__ import annotations

from posomni.kit.errors import NotAuthenticated, PermissionDenied


class MetricsTokenRequired(NotAuthenticated):
    code = "metrics_token_required"
    default_message = "Send the scrape token: Authorization: Bearer <METRICS_TOKEN>."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


class MetricsTokenInvalid(MetricsTokenRequired):
    code = "metrics_token_invalid"
    default_message = "The scrape token is not valid."


class MetricsNetworkRefused(PermissionDenied):
    code = "metrics_network_refused"
    default_message = "This address may not read the metrics: it is not in METRICS_ALLOWED_NETWORKS."
