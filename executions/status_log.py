"""One log line per execution and wave status change, carrying their ids (JSON logs: fields).

Receivers of executions.signals, connected in ExecutionsConfig.ready: whoever changed the
status (the engine's tick or a service acting for a person), the line says so once the change
has committed. No query: the signal carries everything the line says.
"""

import logging

logger = logging.getLogger("executions.status")


def log_execution_status(*, execution_id, old_status, new_status, **_) -> None:
    """Log an execution's status change with its execution_id."""
    logger.info(
        "Execution %s: %s -> %s",
        execution_id,
        old_status or "created",
        new_status,
        extra={"execution_id": execution_id},
    )


def log_wave_status(*, pk, execution_id, old_status, new_status, **_) -> None:
    """Log a wave run's status change with its execution_id and wave_id."""
    logger.info(
        "Wave %s of execution %s: %s -> %s",
        pk,
        execution_id,
        old_status or "created",
        new_status,
        extra={"execution_id": execution_id, "wave_id": pk},
    )
