"""The unattended worker: scheduled drills, drill-instance clean-up, drill-age and readiness watches."""
