"""The operator interface: commands and their one path, access control, the signed audit trail.

Every operator action (CLI, MQTT, a bench timeline, later OPC UA or a web HMI) is one command
object through ``CommandHandler`` / ``apply_command``: authenticate → authorise → validate → run
between two cycles → audit → answer. The audit trail is shared with the container manager.
"""

from runtime.ops._access import AccessConfig, AccessDeniedError, load_access_config
from runtime.ops._audit import AuditError, AuditLog, AuditVerification, verify_audit_log
from runtime.ops._audit_format import classify
from runtime.ops._audit_key import KEY_ENV, KEY_NAME, AuditKeyError, load_verify_key, public_path
from runtime.ops._batch import IMAGE_ENV
from runtime.ops._command_handler import CommandHandler
from runtime.ops._commands import (
    Command,
    CommandResponse,
    RefusedError,
    apply_command,
    command_action,
    find_block,
)
from runtime.ops._refusal import RefusalCode

__all__ = [
    "IMAGE_ENV",
    "KEY_ENV",
    "KEY_NAME",
    "AccessConfig",
    "AccessDeniedError",
    "AuditError",
    "AuditKeyError",
    "AuditLog",
    "AuditVerification",
    "Command",
    "CommandHandler",
    "CommandResponse",
    "RefusalCode",
    "RefusedError",
    "apply_command",
    "classify",
    "command_action",
    "find_block",
    "load_access_config",
    "load_verify_key",
    "public_path",
    "verify_audit_log",
]
