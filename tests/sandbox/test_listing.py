"""Pagination, filters and the read-only operations of the simulated DRS."""

import pytest

from tests.sandbox.conftest import START, job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def test_source_servers_paginate(drs_client, make_sandbox_servers):
    servers = make_sandbox_servers(*[f"host-{n:02d}" for n in range(7)])
    first = drs_client.describe_source_servers(maxResults=3)
    assert len(first["items"]) == 3 and first["nextToken"]
    second = drs_client.describe_source_servers(maxResults=3, nextToken=first["nextToken"])
    third = drs_client.describe_source_servers(maxResults=3, nextToken=second["nextToken"])
    assert len(third["items"]) == 1 and "nextToken" not in third
    seen = [i["sourceServerID"] for page in (first, second, third) for i in page["items"]]
    assert sorted(seen) == sorted(s.drs_id for s in servers)
    paginated = drs_client.get_paginator("describe_source_servers").paginate(PaginationConfig={"PageSize": 2})
    assert len([i for page in paginated for i in page["items"]]) == 7


def test_source_servers_filter_by_id(drs_client, sandbox_servers):
    wanted = [sandbox_servers[0].drs_id, "s-00000000000000000"]
    items = drs_client.describe_source_servers(filters={"sourceServerIDs": wanted})["items"]
    assert [i["sourceServerID"] for i in items] == wanted[:1]


def test_source_server_record(drs_client, sandbox_servers):
    record = drs_client.describe_source_servers(filters={"sourceServerIDs": [sandbox_servers[1].drs_id]})["items"][0]
    assert record["sourceProperties"]["identificationHints"]["hostname"] == "app-01"
    assert record["dataReplicationInfo"]["dataReplicationState"] == "CONTINUOUS"
    assert record["dataReplicationInfo"]["lagDuration"] == "PT5S"
    assert record["tags"] == {"Application": "demo"}
    assert record["lastLaunchResult"] == "NOT_STARTED"
    assert record["arn"].endswith(f":source-server/{sandbox_servers[1].drs_id}")


def test_jobs_newest_first_filtered_and_paginated(drs_client, sandbox_servers, clock, launch_seconds):
    ids = []
    for _ in range(3):
        for server in sandbox_servers:
            ids.append(start(drs_client, [server], isDrill=True)["jobID"])
            clock.shift(10)
        clock.shift(100)
    items = drs_client.describe_jobs()["items"]
    assert [i["jobID"] for i in items] == ids[::-1]

    pages = list(drs_client.get_paginator("describe_jobs").paginate(PaginationConfig={"PageSize": 4}))
    assert [len(p["items"]) for p in pages] == [4, 4, 1]
    assert [i["jobID"] for p in pages for i in p["items"]] == ids[::-1]

    picked = drs_client.describe_jobs(filters={"jobIDs": [ids[0], ids[4]]})["items"]
    assert [i["jobID"] for i in picked] == [ids[4], ids[0]]

    def stamp(seconds):
        from datetime import timedelta

        return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    window = drs_client.describe_jobs(filters={"fromDate": stamp(130), "toDate": stamp(150)})["items"]
    assert [i["jobID"] for i in window] == [ids[5], ids[4], ids[3]]


def test_describe_jobs_with_1000_ids_uses_few_queries(
    drs_client, sandbox_servers, django_assert_max_num_queries, clock, launch_seconds
):
    for server in sandbox_servers:
        start(drs_client, [server], isDrill=True)
    unknown = [f"drsjob-{n:017d}" for n in range(997)]
    ids = [j["jobID"] for j in drs_client.describe_jobs()["items"]]
    with django_assert_max_num_queries(6, using="sandbox"):
        items = drs_client.describe_jobs(filters={"jobIDs": ids + unknown})["items"]
    assert len(items) == 3


def test_job_log_paginates(drs_client, sandbox_servers, clock, launch_seconds):
    started = start(drs_client, sandbox_servers, isDrill=True)
    clock.shift(120)
    everything = drs_client.describe_job_log_items(jobID=started["jobID"])["items"]
    pages = drs_client.get_paginator("describe_job_log_items").paginate(
        jobID=started["jobID"], PaginationConfig={"PageSize": 5}
    )
    assert [i for page in pages for i in page["items"]] == everything
    assert len(everything) == 2 + 3 * 5


def test_launch_configuration(drs_client, sandbox_servers):
    db, app, _web = sandbox_servers
    config = drs_client.get_launch_configuration(sourceServerID=app.drs_id)
    assert config["sourceServerID"] == app.drs_id
    assert config["postLaunchEnabled"] is True
    assert drs_client.get_launch_configuration(sourceServerID=db.drs_id)["postLaunchEnabled"] is False


def test_tags_of_servers_and_jobs(drs_client, sandbox_servers, clock, launch_seconds):
    server = drs_client.describe_source_servers(filters={"sourceServerIDs": [sandbox_servers[0].drs_id]})["items"][0]
    drs_client.tag_resource(resourceArn=server["arn"], tags={"Owner": "dr-team"})
    assert drs_client.list_tags_for_resource(resourceArn=server["arn"])["tags"] == {
        "Application": "demo",
        "Owner": "dr-team",
    }
    started = start(drs_client, sandbox_servers[:1], isDrill=True, tags={"token": "t-1"})
    assert drs_client.list_tags_for_resource(resourceArn=started["arn"])["tags"] == {"token": "t-1"}
    assert job(drs_client, started["jobID"])["tags"] == {"token": "t-1"}
    with pytest.raises(drs_client.exceptions.ResourceNotFoundException):
        drs_client.list_tags_for_resource(resourceArn="arn:aws:drs:us-east-1:123456789012:job/drsjob-00000000000000000")


def test_recovery_instance_filters(drs_client, sandbox_servers, clock, launch_seconds):
    start(drs_client, sandbox_servers, isDrill=True)
    clock.shift(60)
    everything = drs_client.describe_recovery_instances()["items"]
    one = everything[1]["recoveryInstanceID"]
    assert [
        i["recoveryInstanceID"]
        for i in drs_client.describe_recovery_instances(filters={"recoveryInstanceIDs": [one]})["items"]
    ] == [one]
    pages = drs_client.get_paginator("describe_recovery_instances").paginate(PaginationConfig={"PageSize": 2})
    assert sum(len(p["items"]) for p in pages) == 3
