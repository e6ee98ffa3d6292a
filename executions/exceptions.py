"""Errors the execution services raise; each knows the HTTP status an API answers with."""

from drsorch.exceptions import ServiceError


class ExecutionError(ServiceError):
    """Base of the refusals of the execution services. `message` is shown to users as is."""

    status_code = 400
    code = "invalid"


class PlanNotReady(ExecutionError):
    """Readiness checks found errors, or warnings the start did not accept; `report` holds
    every check. `only_risks` says that accepting the warnings (accept_risks) would start it."""

    code = "not_ready"

    def __init__(self, report):
        self.report = report
        self.only_risks = not report.errors
        if self.only_risks:
            risks = "; ".join(check.message for check in report.warnings)
            message = (
                f"The plan has {len(report.warnings)} risk(s) to accept: {risks} "
                "Start again accepting these warnings (accept_risks) to go ahead."
            )
        else:
            errors = "; ".join(check.message for check in report.errors)
            message = f"The plan is not ready: {errors}"
        super().__init__(message)

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
    """Servers of the plan are held by another active execution; `execution` is the one
    holding the first of them, `servers` names every busy server."""

    code = "server_busy"

    def __init__(self, execution, servers):
        names = ", ".join(servers)
        super().__init__(
            f"Server(s) {names} are held by running execution {execution.pk} of plan '{execution.plan_name}' "
            f"({execution.status}); a server belongs to one running execution at a time."
        )
        self.execution = execution
        self.servers = list(servers)

    def as_json(self):
        return {**super().as_json(), "execution": str(self.execution.pk), "servers": self.servers}


class IdempotencyKeyReused(ExecutionConflict):
    """An Idempotency-Key came back with a different request."""

    code = "idempotency_key_reused"
