"""factory_boy factories for the domain models."""

import factory

from plans.choices import ReplicationState, TargetKind
from plans.models import ProtectionGroup, RecoveryPlan, SourceServer, Target


class TargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Target

    name = factory.Sequence(lambda n: f"target-{n}")
    kind = TargetKind.SANDBOX
    account_id = factory.Sequence(lambda n: f"{100000000000 + n:012d}")
    region = "us-east-1"


class SourceServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SourceServer

    target = factory.SubFactory(TargetFactory)
    drs_id = factory.Sequence(lambda n: f"s-{n:017x}")
    hostname = factory.Sequence(lambda n: f"host-{n:02d}")
    tags = factory.LazyFunction(dict)
    replication_state = ReplicationState.CONTINUOUS
    lag_seconds = 0


class ProtectionGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProtectionGroup
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"group-{n}")
    target = factory.SubFactory(TargetFactory)

    @factory.post_generation
    def servers(self, create, extracted, **kwargs):
        if create and extracted:
            for server in extracted:
                self.memberships.create(server=server)


class RecoveryPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecoveryPlan

    name = factory.Sequence(lambda n: f"plan-{n}")
    rto_target_minutes = 60
    rpo_target_minutes = 15
