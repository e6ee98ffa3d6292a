"""Errors the execution services raise; each knows the HTTP status an API answers with."""

from drsorch.exceptions import ServiceError


class ExecutionError(ServiceError):
    """Base of the refusals of the execution services. `message` is shown to users as is."""

    status_code = 400
    code = "invalid"


class PlanNotReady(ExecutionError):
    """Readiness checks found errors; `report` holds every check."""

    code = "not_ready"

    def __init__(self, report):
        errors = "; ".join(check.message for check in report.errors)
        super().__init__(f"The plan is not ready: {errors}")
        self.report = report

    def as_json(self):
        return {**super().as_json(), "readiness": self.report.as_json()}


class ExecutionConflict(ExecutionError):
    """The request conflicts with the current state (409)."""

    status_code = 409
    code = "conflict"


class PlanAlreadyRunning(ExecutionConflict):
    """The plan has an active execution; `execution` is that one."""

    code = "plan_running"

    def __init__(self, execution):
        super().__init__(
            f"Plan '{execution.plan_name}' is already running as execution {execution.pk} "
            f"({execution.status}); wait for it to end or cancel it."
        )
        self.execution = execution

    def as_json(self):
        return {**super().as_json(), "execution": str(self.execution.pk)}


class ServerBusy(ExecutionConflict):
    """A server of the plan is in another active execution."""

    code = "server_busy"


class IdempotencyKeyReused(ExecutionConflict):
    """An Idempotency-Key came back with a different request."""

    code = "idempotency_key_reused"
