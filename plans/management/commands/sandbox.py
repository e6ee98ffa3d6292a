"""`manage.py sandbox seed|configure|status`: operate the simulated DRS.

It lives in plans, above the sandbox: `seed` also creates the demo's target, groups and plan
(plans.demo); `configure` and `status` are the sandbox's own services.
"""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from drsorch.sandbox.services import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_BUSY_SECONDS,
    DEFAULT_REGION,
    sandbox_config,
    sandbox_configure,
    sandbox_status,
)
from plans.demo import DEFAULT_TARGET_NAME, sandbox_seed


def _messages(error):
    if hasattr(error, "message_dict"):
        return " ".join(m for messages in error.message_dict.values() for m in messages)
    return " ".join(error.messages)


class Command(BaseCommand):
    help = "Operate the simulated DRS: seed the demo, configure its behaviour, show its state."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True, parser_class=CommandParser)

        seed = commands.add_parser("seed", help="Create the sandbox target, simulated servers, groups and demo plan.")
        seed.add_argument("--servers", type=int, default=12, help="Number of simulated source servers (default 12).")
        seed.add_argument("--target", default=DEFAULT_TARGET_NAME, help="Name of the sandbox target.")
        seed.add_argument("--account", default=DEFAULT_ACCOUNT_ID, help="12-digit account ID of the target.")
        seed.add_argument("--region", default=DEFAULT_REGION, help="Region of the target.")

        configure = commands.add_parser("configure", help="Change how the simulated DRS behaves, for every process.")
        configure.add_argument("--launch-seconds", type=float, help="Time from StartRecovery to LAUNCHED.")
        configure.add_argument("--throttle-rate", type=float, help="Share of calls throttled, 0..1.")
        configure.add_argument("--fail-launch", nargs="+", metavar="HOST_OR_ID",
                               help="Hostnames or source server IDs whose launch fails.")
        configure.add_argument("--crash-after-start-recovery", action="store_true",
                               help="The next StartRecovery is recorded, then the calling process exits with 137.")
        configure.add_argument("--disconnect", nargs="+", metavar="HOST_OR_ID",
                               help="Servers whose replication is DISCONNECTED from now on (no new snapshots).")
        configure.add_argument("--busy", nargs="+", metavar="HOST_OR_ID",
                               help="Servers a DRS job drsorch did not start holds, from now on for --busy-seconds.")
        configure.add_argument("--busy-seconds", type=float,
                               help=f"How long the --busy job holds them (default {DEFAULT_BUSY_SECONDS:g}).")
        configure.add_argument("--omit-instance-ids", action="store_true",
                               help="Jobs' participating servers come without recoveryInstanceID.")
        configure.add_argument("--deny", nargs="+", metavar="OPERATION",
                               help="DRS operations answered with AccessDeniedException (e.g. StartRecovery); "
                               "Publish denies the simulated SNS.")
        configure.add_argument("--latency-ms", type=int, help="Every simulated call takes this long, 0..60000.")
        configure.add_argument("--fail-post-launch", nargs="+", metavar="HOST_OR_ID",
                               help="Servers whose post-launch actions fail.")
        configure.add_argument("--no-job-tags", action="store_true", help="DescribeJobs answers without tags.")
        configure.add_argument("--fail-ssm", nargs="+", metavar="DOCUMENT",
                               help="SSM documents whose automations and commands fail (e.g. AWS-RunShellScript).")
        configure.add_argument("--clear", action="store_true", help="Restore the defaults first.")

        status = commands.add_parser("status", help="Show servers, launches and jobs of the simulated DRS.")
        status.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, **options):
        return getattr(self, f"_{options['subcommand']}")(options)

    def _seed(self, options):
        try:
            result = sandbox_seed(servers=options["servers"], target_name=options["target"],
                                  account_id=options["account"], region=options["region"])
        except ValidationError as error:
            raise CommandError(_messages(error), returncode=2)
        if options["verbosity"]:
            self.stdout.write(self.style.SUCCESS(str(result)))

    def _configure(self, options):
        flags = {name: True if options[name] else None
                 for name in ("crash_after_start_recovery", "omit_instance_ids", "no_job_tags")}
        try:
            sandbox_configure(
                launch_seconds=options["launch_seconds"],
                throttle_rate=options["throttle_rate"],
                fail_launch=options["fail_launch"],
                clear=options["clear"],
                disconnect=options["disconnect"],
                busy=options["busy"],
                busy_seconds=options["busy_seconds"],
                deny=options["deny"],
                latency_ms=options["latency_ms"],
                fail_post_launch=options["fail_post_launch"],
                fail_ssm=options["fail_ssm"],
                **flags,
            )
        except ValidationError as error:
            raise CommandError(_messages(error), returncode=2)
        config = sandbox_config()

        def listed(key):
            return ", ".join(config[key]) or "none"

        def yes(key):
            return "yes" if config[key] else "no"

        self.stdout.write(
            f"launch seconds: {config['launch_seconds']:g}, throttle rate: {config['throttle_rate']:g}, "
            f"failing launches: {listed('fail_launch')}, "
            f"crash after next StartRecovery: {yes('crash_after_start_recovery')}\n"
            f"disconnected: {listed('disconnect')}, busy: {listed('busy')} "
            f"(held {config['busy_seconds']:g} s), failing post-launch actions: {listed('fail_post_launch')}\n"
            f"denied operations: {listed('deny')}, latency: {config['latency_ms']} ms, "
            f"omit instance IDs: {yes('omit_instance_ids')}, job tags: {'no' if config['no_job_tags'] else 'yes'}\n"
            f"failing SSM documents: {listed('fail_ssm')}"
        )

    def _status(self, options):
        status = sandbox_status()
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2))
            return
        self.stdout.write(f"{'SOURCE SERVER':<21} {'HOSTNAME':<24} {'LAUNCHES':>8}  RECOVERY INSTANCES")
        for server in status["servers"]:
            self.stdout.write(
                f"{server['source_server_id']:<21} {server['hostname']:<24} {server['launch_count']:>8}  "
                f"{', '.join(server['recovery_instance_ids']) or '-'}"
            )
        self.stdout.write("")
        self.stdout.write(f"{'JOB':<26} {'TYPE':<10} {'STATUS':<10} {'DRILL':<6} {'CREATED':<21} SERVERS")
        for job in status["jobs"]:
            self.stdout.write(
                f"{job['job_id']:<26} {job['type']:<10} {job['status']:<10} {'yes' if job['is_drill'] else 'no':<6} "
                f"{job['created_at']:<21} {len(job['source_server_ids'])}"
            )
