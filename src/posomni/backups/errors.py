from __future__ import annotations

from posomni.kit.errors import Conflict, NotFound, PosError


class BackupFailed(PosError):
    """A backup, verification or restore could not be done. Messages never carry a password or a DSN."""

    status_code = 500
    code = "backup_failed"
    default_message = "The backup operation failed."


class BackupNotFound(NotFound):
    code = "backup_not_found"
    default_message = "No such backup."


class RestoreRefused(Conflict):
    code = "restore_refused"
    default_message = "The restore was refused."
