"""Reads of the plans app that pages share."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .models import ProtectionGroup, SourceServer, tags_match


@dataclass(frozen=True)
class ServerGroup:
    """A protection group a server belongs to, and how: chosen explicitly, or by the group's
    tag selector (a server may be both; it is then listed once, as explicit)."""

    group: ProtectionGroup
    explicit: bool

    @property
    def selector_text(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in sorted(self.group.tag_selector.items()))


def server_groups(servers: Sequence[SourceServer]) -> dict[int, list[ServerGroup]]:
    """Every protection group each of `servers` belongs to, by server pk, sorted by name.

    One query whatever the number of servers: the groups with a tag selector on the servers'
    targets, matched in Python against the tags already loaded. The explicit group comes from
    `membership__group`, which the caller selects with the servers (else one query per server)."""
    target_ids = {server.target_id for server in servers}
    tagged = (
        list(
            ProtectionGroup.objects.filter(target_id__in=target_ids)
            .exclude(tag_selector={})
            .only("pk", "name", "target_id", "tag_selector")
            .order_by("name", "pk")
        )
        if target_ids
        else []
    )
    by_target = {}
    for group in tagged:
        by_target.setdefault(group.target_id, []).append(group)
    found = {}
    for server in servers:
        membership = getattr(server, "membership", None)
        explicit = membership.group if membership is not None else None
        groups = [ServerGroup(explicit, True)] if explicit is not None else []
        groups += [
            ServerGroup(group, False)
            for group in by_target.get(server.target_id, ())
            if (explicit is None or group.pk != explicit.pk) and tags_match(server.tags, group.tag_selector)
        ]
        found[server.pk] = sorted(groups, key=lambda item: (item.group.name, item.group.pk))
    return found


def servers_of_groups(*, group_ids: Iterable[int]) -> list[SourceServer]:
    """The servers the protection groups `group_ids` resolve to (explicit members and tag
    matches), each once, by hostname: the servers of a wave with these groups."""
    found: dict[int, SourceServer] = {}
    for group in ProtectionGroup.objects.filter(pk__in=set(group_ids)).prefetch_related("servers"):
        for server in group.resolved_servers():
            found.setdefault(server.pk, server)
    return sorted(found.values(), key=lambda server: (server.hostname, server.drs_id))
