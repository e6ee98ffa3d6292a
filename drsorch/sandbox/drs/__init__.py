"""The simulated DRS API: one function per operation, JSON request in, JSON answer out.

Each function takes the account/region `scope` and the parsed request body and returns
(HTTP status, answer) or raises SandboxError. Reads derive every status from the moments
stored on the rows (see simulation.py) and the current time.

The modules, each importing only `common` among its siblings:

- common: `Scope`, the quotas, `SERVICE_CODE`, page sizes, the settings lock and capacity check;
- servers: DescribeSourceServers;
- recovery: StartRecovery;
- jobs: DescribeJobs, DescribeJobLogItems;
- instances: DescribeRecoveryInstances, TerminateRecoveryInstances (and the instance state EC2 reads);
- snapshots: DescribeRecoverySnapshots;
- configuration: GetLaunchConfiguration, ListLaunchActions;
- tags: ListTagsForResource, TagResource.

This package exports only what transport.py dispatches through: `OPERATIONS` and
`WITHOUT_ACCOUNT_CHECK`. Everything else is imported from its module.
"""

from . import configuration, instances, jobs, recovery, servers, snapshots, tags

OPERATIONS = {
    "DescribeSourceServers": servers.describe_source_servers,
    "StartRecovery": recovery.start_recovery,
    "DescribeJobs": jobs.describe_jobs,
    "DescribeJobLogItems": jobs.describe_job_log_items,
    "DescribeRecoveryInstances": instances.describe_recovery_instances,
    "DescribeRecoverySnapshots": snapshots.describe_recovery_snapshots,
    "TerminateRecoveryInstances": instances.terminate_recovery_instances,
    "GetLaunchConfiguration": configuration.get_launch_configuration,
    "ListLaunchActions": configuration.list_launch_actions,
    "ListTagsForResource": tags.list_tags_for_resource,
    "TagResource": tags.tag_resource,
}
# Tag operations answer for any ARN and do not declare UninitializedAccountException.
WITHOUT_ACCOUNT_CHECK = {"ListTagsForResource", "TagResource"}

__all__ = ["OPERATIONS", "WITHOUT_ACCOUNT_CHECK"]
