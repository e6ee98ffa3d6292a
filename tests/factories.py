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


# --- Executions (appended for the UI tests and the page benchmark) ------------------------------

from datetime import timedelta  # noqa: E402

from django.utils import timezone  # noqa: E402

from executions.choices import ExecutionMode, ExecutionStatus, LaunchStatus, WaveStatus  # noqa: E402
from executions.models import Execution, ServerLaunch, WaveRun  # noqa: E402


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Execution

    plan = factory.SubFactory(RecoveryPlanFactory)
    plan_name = factory.LazyAttribute(lambda o: o.plan.name)
    mode = ExecutionMode.DRILL
    status = ExecutionStatus.RUNNING
    requested_by_username = "operator"
    rto_target_minutes = factory.LazyAttribute(lambda o: o.plan.rto_target_minutes)
    rpo_target_minutes = factory.LazyAttribute(lambda o: o.plan.rpo_target_minutes)
    started_at = factory.LazyFunction(timezone.now)


class WaveRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WaveRun

    execution = factory.SubFactory(ExecutionFactory)
    index = factory.Sequence(lambda n: n)
    name = factory.LazyAttribute(lambda o: f"Wave {o.index + 1}")
    status = WaveStatus.PENDING
    depends_on = factory.LazyAttribute(lambda o: [o.index - 1] if o.index else [])


class ServerLaunchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServerLaunch

    wave_run = factory.SubFactory(WaveRunFactory)
    execution = factory.LazyAttribute(lambda o: o.wave_run.execution)
    target = factory.SubFactory(TargetFactory)
    source_server_id = factory.Sequence(lambda n: f"s-{n:017x}")
    hostname = factory.Sequence(lambda n: f"host-{n:04d}")
    status = LaunchStatus.NOT_STARTED


def build_execution(*, servers=10, waves=2, status=ExecutionStatus.RUNNING, plan=None, target=None):
    """An execution with `waves` wave runs and `servers` launches spread over them, written
    with bulk_create so that thousands of servers take a moment. The first half of each
    wave's servers is LAUNCHED, the rest IN_PROGRESS."""
    plan = plan or RecoveryPlanFactory()
    target = target or TargetFactory()
    now = timezone.now()
    execution = ExecutionFactory(plan=plan, status=status, started_at=now - timedelta(minutes=12))
    wave_runs = WaveRun.objects.bulk_create(
        [
            WaveRun(
                execution=execution,
                index=i,
                name=f"Wave {i + 1}",
                depends_on=[i - 1] if i else [],
                status=WaveStatus.LAUNCHING,
                started_at=now - timedelta(minutes=10 - i),
            )
            for i in range(waves)
        ]
    )
    launches = []
    for n in range(servers):
        wave = wave_runs[n % waves]
        launched = n // waves % 2 == 0
        launches.append(
            ServerLaunch(
                execution=execution,
                wave_run=wave,
                target=target,
                source_server_id=f"s-{n:017x}",
                hostname=f"host-{n:04d}",
                status=LaunchStatus.LAUNCHED if launched else LaunchStatus.IN_PROGRESS,
                phase="READY" if launched else "CONVERSION",
                recovery_instance_id=f"i-{n:017x}" if launched else "",
                launched_at=now - timedelta(seconds=30) if launched else None,
            )
        )
    ServerLaunch.objects.bulk_create(launches, batch_size=500)
    return execution
