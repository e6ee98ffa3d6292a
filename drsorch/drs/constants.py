"""DRS's numbers and names, declared once (see ../shared/reference/drs-facts.md)."""

from django.db import models

# Service quotas per account and region.
MAX_SERVERS_PER_JOB = 100
MAX_ACTIVE_JOBS_PER_TARGET = 20
MAX_SERVERS_IN_ACTIVE_JOBS = 500

# Page sizes DRS accepts.
MAX_JOB_IDS_PER_CALL = 1000
MAX_INSTANCES_PER_TERMINATE = 200

# The tags drsorch puts on the DRS jobs it starts; the launch token is how a job whose id
# was never stored (a crash, a lost answer) is found and adopted.
TAG_EXECUTION = "drsorch:execution"
TAG_WAVE = "drsorch:wave"
TAG_LAUNCH_TOKEN = "drsorch:launch-token"


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
