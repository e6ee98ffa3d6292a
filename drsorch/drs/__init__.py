"""What drsorch knows about AWS Elastic Disaster Recovery, and the one gateway its calls go through.

- `constants`: DRS's quotas, page sizes, our job tags, and DRS's status names.
- `errors`: how a DRS error reads (retry later, refused, final, conflict).
- `times`: DRS's ISO-8601 datetimes and durations.
- `gateway`: every DRS call the product makes (engine, readiness, inventory sync, clean-up).
"""
