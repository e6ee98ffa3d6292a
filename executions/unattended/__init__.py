"""What the worker does with no one watching: the unattended side of drsorch.

Run every minute by the django-q2 task `executions.tasks.run_unattended` (declared in
drsorch/schedules.py). Each module is independent of the others and safe to run twice, to
crash at any line and to run in two workers at once:

- scheduled_drills: starts the DRILL a plan's `drill_schedule` (cron, UTC) asks for,
  requested by `schedule`, or records why it skipped the slot (ScheduledDrillRun).
- instance_ttl: warns `drill_instances.expiring` and then cleans up a drill's recovery
  instances `drill_instance_ttl_minutes` after the drill ended. Never a RECOVERY's.
"""
