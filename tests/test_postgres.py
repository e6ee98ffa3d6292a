"""Migrations and database constraints on PostgreSQL (run by make test-e2e)."""

import pytest
from django.db import IntegrityError, connection, connections, transaction

from plans.models import ProtectionGroupMembership, SourceServer
from tests.factories import ProtectionGroupFactory, SourceServerFactory, TargetFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=["default", "sandbox"])]


def test_runs_on_postgresql():
    assert connection.vendor == "postgresql"
    assert connections["sandbox"].vendor == "postgresql"


def test_all_migrations_applied():
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


def test_server_unique_per_target():
    server = SourceServerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SourceServer.objects.create(target=server.target, drs_id=server.drs_id)


def test_server_explicitly_in_one_group_only():
    target = TargetFactory()
    server = SourceServerFactory(target=target)
    ProtectionGroupFactory(target=target, servers=[server])
    other = ProtectionGroupFactory(target=target)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProtectionGroupMembership.objects.create(group=other, server=server)


def test_tag_selector_resolution_on_postgresql():
    from plans.services import protection_group_save

    target = TargetFactory()
    match = SourceServerFactory(target=target, tags={"Tier": "db", "aws:app": "erp"})
    SourceServerFactory(target=target, tags={"Tier": "web"})
    group = protection_group_save(name="db", target=target, tag_selector={"Tier": "db", "aws:app": "erp"})
    assert list(group.resolved_servers()) == [match]
