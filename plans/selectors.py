"""Reads of the plans pages that more than one view needs."""

from collections.abc import Iterable

from .models import ProtectionGroup, SourceServer


def servers_of_groups(*, group_ids: Iterable[int]) -> list[SourceServer]:
    """The servers the protection groups `group_ids` resolve to (explicit members and tag
    matches), each once, by hostname: the servers of a wave with these groups."""
    found: dict[int, SourceServer] = {}
    for group in ProtectionGroup.objects.filter(pk__in=set(group_ids)).prefetch_related("servers"):
        for server in group.resolved_servers():
            found.setdefault(server.pk, server)
    return sorted(found.values(), key=lambda server: (server.hostname, server.drs_id))
