"""DRS's numbers and names, declared once (see ../shared/reference/drs-facts.md)."""

from django.db import models

# Service quotas per account and region.
MAX_SERVERS_PER_JOB = 100
MAX_ACTIVE_JOBS_PER_TARGET = 20
MAX_SERVERS_IN_ACTIVE_JOBS = 500

# Page sizes DRS accepts.
MAX_JOB_IDS_PER_CALL = 1000
MAX_INSTANCES_PER_TERMINATE = 200
MAX_SOURCE_SERVER_IDS_PER_FILTER = 200

# The tags drsorch puts on the DRS jobs it starts; the launch token is how a job whose id
# was never stored (a crash, a lost answer) is found and adopted.
TAG_EXECUTION = "drsorch:execution"
TAG_WAVE = "drsorch:wave"
TAG_LAUNCH_TOKEN = "drsorch:launch-token"


# The job log events (botocore's JobLogEvent enum) that say a server, or the whole job when
# they name no server, did not make it: each carries its reason in eventData.rawError.
FAILURE_LOG_EVENTS = frozenset({
    "SERVER_SKIPPED", "CLEANUP_FAIL", "SNAPSHOT_FAIL", "USING_PREVIOUS_SNAPSHOT_FAILED", "CONVERSION_FAIL",
    "LAUNCH_FAILED", "JOB_CANCEL", "DEPLOY_NETWORK_CONFIGURATION_FAILED", "UPDATE_NETWORK_CONFIGURATION_FAILED",
    "UPDATE_LAUNCH_TEMPLATE_FAILED", "NETWORK_RECOVERY_FAIL",
})
# A relaunch replaces the server's earlier recovery instance (DRS keeps one per source server):
# these events name the replaced instance in eventData.targetInstanceID.
REPLACEMENT_LOG_EVENTS = frozenset({"CLEANUP_START", "CLEANUP_END"})


class JobStatus(models.TextChoices):
    """A DRS job's `status`."""

    PENDING = "PENDING", "Pending"
    STARTED = "STARTED", "Started"
    COMPLETED = "COMPLETED", "Completed"


class LaunchActionRunStatus(models.TextChoices):
    """The status of one post-launch action run (`launchActionsStatus.runs[].status`)."""

    IN_PROGRESS = "IN_PROGRESS", "In progress"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
