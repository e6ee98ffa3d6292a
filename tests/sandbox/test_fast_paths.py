"""The hand-written fast paths of the simulated DRS: IDs, the per-call state, raw inserts."""

import pytest

from drsorch.sandbox.bulk import insert_rows
from drsorch.sandbox.models import (
    SandboxRegion,
    SandboxSettings,
    SandboxSourceServer,
    new_instance_id,
    new_job_id,
    new_snapshot_id,
    new_source_server_id,
)
from drsorch.sandbox.protocol import INSTANCE_ID_RE, JOB_ID_RE, SNAPSHOT_ID_RE, SOURCE_SERVER_ID_RE
from drsorch.sandbox.transport import CallState, call_state

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def test_ids_match_drs_patterns_and_differ():
    for make, pattern in [
        (new_source_server_id, SOURCE_SERVER_ID_RE),
        (new_job_id, JOB_ID_RE),
        (new_instance_id, INSTANCE_ID_RE),
        (new_snapshot_id, SNAPSHOT_ID_RE),
    ]:
        ids = {make() for _ in range(500)}
        assert len(ids) == 500
        assert all(pattern.match(value) for value in ids)
        assert len(set("".join(value.split("-", 1)[1] for value in ids))) > 10  # not a few characters only


def test_call_state_creates_the_settings_row_and_reads_the_region():
    SandboxSettings.objects.all().delete()
    assert call_state("111111111111", "eu-west-1") == CallState(0.0, False, False, False, (), 0)
    assert SandboxSettings.objects.filter(pk=SandboxSettings.PK).exists()
    SandboxRegion.objects.create(account_id="111111111111", region="eu-west-1", uninitialized=True)
    SandboxSettings.objects.filter(pk=SandboxSettings.PK).update(throttle_rate=0.5)
    assert call_state("111111111111", "eu-west-1")[:2] == (0.5, True)
    assert call_state("111111111111", "eu-west-2")[:2] == (0.5, False)


def test_call_state_reads_the_answer_switches_in_the_same_query(django_assert_num_queries):
    SandboxSettings.load()
    SandboxSettings.objects.filter(pk=SandboxSettings.PK).update(
        omit_instance_ids=True, no_job_tags=True, deny=["StartRecovery", "DescribeJobs"], latency_ms=7
    )
    with django_assert_num_queries(1, using="sandbox"):
        state = call_state("111111111111", "eu-west-1")
    assert state == CallState(0.0, False, True, True, ("StartRecovery", "DescribeJobs"), 7)


def test_insert_rows_prepares_datetimes_and_json_like_the_orm(clock):
    from django.utils import timezone

    now = timezone.now()
    insert_rows(
        SandboxSourceServer,
        [
            {
                "source_server_id": new_source_server_id(),
                "account_id": "111111111111",
                "region": "eu-west-1",
                "hostname": f"h{n}",
                "fqdn": "",
                "tags": {"Tier": "db", "n": str(n)},
                "post_launch_actions": [{"a": n}],
                "replication_state": "CONTINUOUS",
                "lag_seconds": 1,
                "recommended_instance_type": "m5.large",
                "os_name": "Linux",
                "cpu_cores": 2,
                "ram_bytes": 1,
                "disk_bytes": 1,
                "created_at": now,
            }
            for n in range(3)
        ],
    )
    rows = SandboxSourceServer.objects.filter(account_id="111111111111").order_by("hostname")
    assert [(s.hostname, s.tags, s.post_launch_actions, s.created_at) for s in rows] == [
        (f"h{n}", {"Tier": "db", "n": str(n)}, [{"a": n}], now) for n in range(3)
    ]
    insert_rows(SandboxSourceServer, [])  # nothing to insert is not an error
