"""What the worker does with no one watching: the unattended side of drsorch.

Each module is independent of the others and safe to run twice, to crash at any line and to
run in two workers at once.

Every minute, `executions.tasks.run_unattended` ("drsorch: unattended drills"):
- scheduled_drills: starts the DRILL a plan's `drill_schedule` (cron, UTC) asks for,
  requested by `schedule`, or records why it skipped the slot (ScheduledDrillRun).
- instance_ttl: warns `drill_instances.expiring` and then cleans up a drill's recovery
  instances `drill_instance_ttl_minutes` after the drill ended. Never a RECOVERY's.

Every DRSORCH_READINESS_WATCH_MINUTES, `executions.tasks.watch_plans` ("drsorch: readiness watch"):
- readiness_watch: every plan's readiness from a fresh inventory; readiness.degraded or
  readiness.recovered when it changes (PlanReadinessEvaluation).
- overdue: drill.overdue once a day per OVERDUE plan (PlanOverdueNotice).
"""
