# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Which kind of move an operation gives each server, or why none.

This is the core of every plan: :class:`~nova_migrate_flows.tasks.plan.
BuildPlan` asks it for every server, whatever preflight checks are
configured; the ``server-state`` check reports the same verdict with its
details (busy, locked). It also decides what becomes of the servers real
hosts carry: those whose flavor keeps Nova from live-migrating them
(:func:`non_live_reason`), and the members of server groups
(:func:`group_verdicts`).
"""

import collections
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nova_migrate_flows import constants, exceptions
from nova_migrate_flows import request as request_mod
from nova_migrate_flows.compute import microversions, models
from nova_migrate_flows.moves import base as moves_base
from nova_migrate_flows.moves import registry
from nova_migrate_flows.request import Operation

#: ``[drain] non_live_servers`` value that leaves the servers in place.
SKIP = "skip"
NON_LIVE_OPTION = "[drain] non_live_servers"

#: Flavor extra specs that keep Nova from live-migrating a server, as
#: (pattern of the key, what they give the server).
NON_LIVE_EXTRA_SPECS: tuple[tuple[str, str], ...] = (
    (r"pci_passthrough:alias", "PCI passthrough devices"),
    # resources:VGPU, and the numbered or named request groups
    # (resources1:VGPU, resources_gpu:VGPU).
    (r"resources[^:]*:VGPU", "vGPUs"),
    (r"accel:device_profile", "accelerators (Cyborg)"),
    (r"hw:mem_encryption", "encrypted memory (AMD SEV)"),
    (r"hw:tpm_version", "a vTPM"),
)
_FALSE = frozenset({"0", "false", "no", "off"})
#: A vTPM whose secret Nova can hand to the target host moves live
#: (Nova 2025.1).
_TPM_SECRETS_THAT_MOVE = frozenset({"host", "deployment"})

#: The kind each operation moves its servers with (live operations may
#: move stopped servers cold, as configured).
KIND_OF = {
    Operation.LIVE_MIGRATE: constants.LIVE,
    Operation.HOST_EVACUATE_LIVE: constants.LIVE,
    Operation.HOST_SERVERS_MIGRATE: constants.COLD,
    Operation.RESIZE: constants.RESIZE,
    Operation.HOST_EVACUATE: constants.EVACUATE,
    # Maintenance moves running servers live (and stopped ones cold, as
    # a live drain does); moving them back uses the kind they left with.
    Operation.MAINTENANCE_ENTER: constants.LIVE,
    Operation.MAINTENANCE_EXIT: constants.LIVE,
    Operation.MAINTENANCE_ROLL: constants.LIVE,
}

#: The operations that drain hosts live: stopped servers may move cold,
#: and servers Nova does not live-migrate as ``[drain] non_live_servers``
#: says.
LIVE_DRAINS = frozenset({Operation.HOST_EVACUATE_LIVE,
                         Operation.MAINTENANCE_ENTER})


def kind_name(request: request_mod.MoveRequest) -> str:
    """The name of the kind of move ``request`` asks for."""
    if request.op is Operation.MOVE:
        if not request.kind:
            raise ValueError("a move request names its kind")
        return request.kind
    return KIND_OF[request.op]


def kind_of(request: request_mod.MoveRequest) -> moves_base.MoveKind:
    """The kind of move ``request`` asks for."""
    return registry.get(kind_name(request))


def microversion_error(request: request_mod.MoveRequest,
                       cloud_max: str) -> str | None:
    """Why a cloud whose compute API goes up to ``cloud_max`` cannot do
    ``request``, or None."""
    too_old = microversions.oldest_supported_error(cloud_max)
    if too_old is not None:
        return f"{request.operation}: {too_old}"
    kind = kind_of(request)
    needed = kind.microversion(request.target_host)
    if needed is None or microversions.supports(cloud_max, needed):
        return None
    onto = f" onto {request.target_host}" if request.target_host else ""
    return (f"{request.operation}: a {kind.name}{onto} needs compute API "
            f"microversion {needed}; the cloud's maximum is {cloud_max}")


def moves_live(request: request_mod.MoveRequest) -> bool:
    """Whether ``request`` moves its servers live (stopped servers of a
    live host drain may still move cold)."""
    return kind_name(request) == constants.LIVE


def planned_action(
    server: models.Server, request: request_mod.MoveRequest
) -> tuple[str | None, str]:
    """The kind of move ``request`` gives ``server``, or None and why
    not."""
    kind = kind_of(request)
    why = kind.refusal(server)
    if why is None:
        resources = None
        if kind.name == constants.LIVE and not kind.adopts(server):
            resources = non_live_reason(server)
        if resources is not None:
            return _not_live(server, request, resources)
        return kind.name, ""
    if request.op in LIVE_DRAINS and server.status == "SHUTOFF":
        if request.stopped_servers == "cold-migrate":
            return constants.COLD, "SHUTOFF: cold-migrated"
        return None, "SHUTOFF: cannot move live (stopped_servers = skip)"
    return None, explained(server, why)


def detoured(server: models.Server,
             request: request_mod.MoveRequest) -> bool:
    """Whether ``request`` moves ``server`` another way than it asks,
    because Nova does not live-migrate what its flavor gives it (an outage
    the operator is told of)."""
    kind = kind_of(request)
    if kind.refusal(server) is not None:
        return False  # moved another way because of its state
    action, _ = planned_action(server, request)
    return action is not None and action != kind.name


# -- servers Nova does not live-migrate --------------------------------------

def non_live_reason(server: models.Server) -> str | None:
    """What the flavor of ``server`` gives it that Nova does not
    live-migrate, in words, or None."""
    flavor = server.flavor_info
    specs = flavor.extra_specs
    found = []
    for key, value in sorted(specs.items()):
        for pattern, what in NON_LIVE_EXTRA_SPECS:
            if re.fullmatch(pattern, key) and _keeps_from_live(key, value,
                                                               specs):
                found.append(f"{what} ({key}={value})")
    if not found:
        return None
    return f"its flavor {flavor.name} gives it {' and '.join(found)}"


def _keeps_from_live(key: str, value: str, specs: Mapping[str, str]) -> bool:
    if key == "hw:mem_encryption":
        return value.strip().lower() not in _FALSE
    if key == "hw:tpm_version":
        return specs.get("hw:tpm_secret_security") not in \
            _TPM_SECRETS_THAT_MOVE
    if key.endswith(":VGPU"):
        return value.strip() not in ("", "0")
    return bool(value.strip())


def _not_live(server: models.Server, request: request_mod.MoveRequest,
              resources: str) -> tuple[str | None, str]:
    """What a live operation does with a server Nova does not
    live-migrate."""
    if request.op not in LIVE_DRAINS:
        return None, (
            f"{resources}: Nova does not live-migrate it; move it cold "
            "instead ('nova-migrate-flow move --kind cold-migrate SERVER': "
            "it stops while it moves)"
        )
    route = request.non_live_servers
    if route == SKIP:
        return None, (f"{resources}: Nova does not live-migrate it "
                      f"({NON_LIVE_OPTION} = skip)")
    other = non_live_kind(route)
    refused = other.refusal(server)
    if refused is not None:
        return None, (f"{resources}: Nova does not live-migrate it, and "
                      f"{refused}")
    return other.name, (
        f"{resources}: Nova does not live-migrate it; {other.name} instead "
        f"({NON_LIVE_OPTION})"
    )


def detour_kinds() -> list[str]:
    """The kinds of move that can take a running server off a running host
    instead of a live migration: what ``[drain] non_live_servers`` may
    name."""
    return [
        name for name, kind in registry.installed().items()
        if name not in (constants.LIVE, constants.RESIZE)
        and not kind.source_must_be_down
    ]


def non_live_kind(name: str) -> moves_base.MoveKind:
    """The kind of move ``[drain] non_live_servers`` names;
    ConfigurationError when it names none that can do it."""
    kinds = detour_kinds()
    if name not in kinds:
        raise exceptions.ConfigurationError(
            f"configuration: {NON_LIVE_OPTION} = {name!r}: not skip, nor a "
            "kind of move that takes a running server off a running host; "
            f"use one of: {', '.join([SKIP, *kinds])}"
        )
    return registry.get(name)


def check_request(request: request_mod.MoveRequest) -> None:
    """Refuse, before anything is read, an option value ``request`` would
    use and that names nothing it can do (ConfigurationError)."""
    if request.op in LIVE_DRAINS and request.non_live_servers != SKIP:
        non_live_kind(request.non_live_servers)


# -- states that stop a move ------------------------------------------------

def explained(server: models.Server, why: str) -> str:
    """A kind's refusal of ``server``, with what the operator can do when
    its state says it."""
    status = server.status
    if status == "ERROR":
        return (f"{why}; the server is in ERROR (its fault: 'openstack "
                "server show'): once it is sound, reset its state "
                "('openstack server set --state active') and move it again, "
                "or host-evacuate it if its host failed")
    if status == "SHELVED_OFFLOADED":
        return (f"{why}; it is shelved and offloaded: on no host, so there "
                "is nothing to move; unshelve it ('openstack server "
                "unshelve [--host HOST]') where it should run")
    if status == "SHELVED":
        return (f"{why}; it is shelved: offload it ('openstack server "
                "shelve-offload') to free its host")
    return why


def busy_reason(server: models.Server, waited: float) -> str:
    """Why a server busy with another task is not moved."""
    reason = f"busy: task_state {server.task_state}; wait for it to end"
    if waited > 0:
        reason += (f" (still busy after {waited:g} s, [migration] "
                   "busy_wait)")
    return reason


def locked_reason(server: models.Server) -> str:
    """A locked server, in words."""
    why = f" ({server.locked_reason})" if server.locked_reason else ""
    return f"locked{why}"


def left_host(before: models.Server, after: models.Server,
              request: request_mod.MoveRequest) -> str | None:
    """Why a server of a host operation, read again, is no longer one it
    moves (it left the hosts being emptied), or None. (The one server of a
    single-server operation is moved from wherever it is.)"""
    if after.host == before.host or not request.op.is_host_operation \
            or after.host in request.hosts:
        return None
    return (f"it left {before.host} while it was busy (now on "
            f"{after.host or 'no host'}, {after.status}): nothing to move")


# -- server groups -----------------------------------------------------------

PASS = "pass"  # noqa: S105 - a verdict, not a password
WARN = "warn"
SKIP_VERDICT = "skip"
FAIL = "fail"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a server's group means for its move: ``status`` is ``pass``,
    ``warn``, ``skip`` or ``fail`` (as a preflight check's), ``data`` goes
    into the plan (``server_group``: what the verification checks;
    ``exclusive``: the groups whose members move one at a time)."""

    status: str
    message: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


def group_verdicts(
    servers: Mapping[str, models.Server],
    moving: Iterable[str],
    groups: Iterable[models.ServerGroup],
    other_server: Callable[[str], models.Server | None],
    request: request_mod.MoveRequest,
    services: Mapping[str, models.Service],
) -> dict[str, Verdict]:
    """The verdict of every server of the plan that is in a server group.

    :param servers: the servers of the plan
    :param moving: those the plan moves (the others only count where they
        are)
    :param groups: every server group of the cloud
    :param other_server: a member that is not in ``servers`` (None: gone),
        asked only for groups whose policy is enforced
    :param services: the compute services, by host

    Hard affinity: Nova's scheduler sends a member only to a host where
    the others are, so members that share a host cannot move one by one:
    they are all left in place (never split), with what the operator can
    do; a member whose others are elsewhere joins them. Hard
    anti-affinity: a member goes only to a host holding fewer than the
    policy allows; the members that no host left can take are left in
    place, an explicit target that holds a member is refused, and the
    members that move go one at a time (``exclusive``). Soft policies are
    noted, not enforced.
    """
    moving = set(moving)
    verdicts: dict[str, Verdict] = {}
    for group in groups:
        ours = sorted((m for m in group.members if m in servers),
                      key=lambda m: (servers[m].name, m))
        if not ours:
            continue
        label = _label(group)
        if not group.hard:
            keep = "apart" if "anti" in group.policy else "together"
            for member in ours:
                verdicts[member] = Verdict(WARN, (
                    f"member of {group.policy} server group {label}: Nova's "
                    f"scheduler keeps its members {keep} where it can, "
                    "without enforcing it; noted, not checked"))
            continue
        known = dict(servers)
        for m in group.members:
            if m not in known and (other := other_server(m)) is not None:
                known[m] = other
        hosts = {m: known[m].host if m in known else None
                 for m in group.members}
        shown = {"id": group.id, "name": group.name, "policy": group.policy,
                 "members": list(group.members),
                 "max_per_host": group.max_per_host}
        mine = [m for m in ours if m in moving]
        for member in ours:
            if member not in moving:
                verdicts[member] = Verdict(PASS, f"member of {group.policy}"
                                           f" server group {label}; not "
                                           "moved")
        if group.policy == models.AFFINITY:
            found = _affinity(group, label, mine, known, hosts, request,
                              services)
        else:
            found = _anti_affinity(group, label, mine, known, hosts,
                                   request, services)
        for member, verdict in found.items():
            data = dict(verdict.data, server_group=shown)
            verdicts[member] = dataclasses.replace(verdict, data=data)
    return verdicts


def _label(group: models.ServerGroup) -> str:
    return f"{group.name or '(no name)'} ({group.id[:8]})"


def _must_empty(request: request_mod.MoveRequest, message: str) -> Verdict:
    """A server its group keeps from moving, in an operation that refuses
    to start unless its hosts can be emptied."""
    return Verdict(FAIL, message)


def _refused(request: request_mod.MoveRequest, message: str) -> Verdict:
    """A server its group keeps from moving: refused when it is the one
    server asked for, left in place in a host operation."""
    if request.op.is_host_operation:
        return Verdict(SKIP_VERDICT, message)
    return Verdict(FAIL, message)


def destinations(server: models.Server, request: request_mod.MoveRequest,
                 services: Mapping[str, models.Service]) -> set[str]:
    """The hosts a move of ``server`` may land on: the target, or the up
    and enabled hosts (the candidates, if configured) that are not being
    emptied."""
    if request.target_host:
        return {request.target_host}
    usable = {host for host, service in services.items()
              if service.up and service.enabled}
    if request.candidate_hosts:
        usable &= set(request.candidate_hosts)
    return usable - set(request.hosts) - {server.host or ""}


def _names(members: Iterable[str],
           servers: Mapping[str, models.Server]) -> str:
    return ", ".join(servers[m].name if m in servers else m
                     for m in sorted(members))


def _affinity(
    group: models.ServerGroup,
    label: str,
    mine: list[str],
    servers: Mapping[str, models.Server],
    hosts: Mapping[str, str | None],
    request: request_mod.MoveRequest,
    services: Mapping[str, models.Service],
) -> dict[str, Verdict]:
    verdicts: dict[str, Verdict] = {}
    target = request.target_host
    for member in mine:
        server = servers[member]
        peers = [m for m in group.members if m != member and hosts.get(m)]
        if not peers:
            verdicts[member] = Verdict(PASS, (
                f"the only member of affinity server group {label} on a "
                "host: it goes where the scheduler sends it"))
            continue
        beside = [p for p in peers if hosts[p] == server.host]
        if beside and request.force and target:
            verdicts[member] = Verdict(WARN, (
                f"member of affinity server group {label}: forced onto "
                f"{target} past Nova's scheduler; move its other members "
                f"({_names(beside, servers)}) onto {target} too, or the "
                "group stays split"))
            continue
        if beside:
            verdicts[member] = _refused(request, (
                f"member of affinity server group {label} with "
                f"{len(beside)} other member(s) on {server.host} "
                f"({_names(beside, servers)}): Nova's scheduler moves no "
                "member away from the others, so one by one they can only "
                f"fail; left in place, the group whole. {_move_group(request)}"
                ))
            continue
        where = sorted({str(hosts[p]) for p in peers})
        allowed = set(where) & destinations(server, request, services)
        if target and target not in where:
            verdicts[member] = _refused(request, (
                f"member of affinity server group {label}, whose other "
                f"members are on {', '.join(where)}: Nova's scheduler sends "
                f"it only there, not to {target}"))
        elif not allowed:
            verdicts[member] = _refused(request, (
                f"member of affinity server group {label}, whose other "
                f"members are on {', '.join(where)}: Nova's scheduler sends "
                "it only there, and none of those hosts can take it (down, "
                "disabled, or being emptied too)"))
        else:
            verdicts[member] = Verdict(PASS, (
                f"affinity server group {label}: joins its other members on "
                f"{', '.join(sorted(allowed))}"))
    return verdicts


def _move_group(request: request_mod.MoveRequest) -> str:
    """What the operator can do to move a hard-affinity group whose
    members share a host."""
    if kind_name(request) == constants.EVACUATE:
        how = ("evacuate each member onto one host past the scheduler "
               "('nova evacuate --force SERVER HOST', microversion 2.67 or "
               "earlier)")
    else:
        how = ("'nova-migrate-flow live-migrate --force SERVER HOST' for "
               "each member, onto one host (the scheduler's checks do not "
               "run)")
        if kind_name(request) != constants.LIVE:
            how = f"if they run, {how}"
    return f"To move the group: {how}, or recreate it as soft-affinity"


def _anti_affinity(
    group: models.ServerGroup,
    label: str,
    mine: list[str],
    servers: Mapping[str, models.Server],
    hosts: Mapping[str, str | None],
    request: request_mod.MoveRequest,
    services: Mapping[str, models.Service],
) -> dict[str, Verdict]:
    verdicts: dict[str, Verdict] = {}
    limit = group.max_per_host
    #: The members on each host, and where the plan sends those it moves.
    on: dict[str, list[str]] = collections.defaultdict(list)
    for m, h in hosts.items():
        if h:
            on[h].append(m)
    allows = "one member per host" if limit == 1 else \
        f"{limit} members per host"
    moving: list[str] = []
    for member in mine:
        server = servers[member]
        pool = destinations(server, request, services)
        free = sorted(h for h in pool if len(on[h]) < limit)
        if request.target_host and not free:
            verdicts[member] = _refused(request, (
                f"member of anti-affinity server group {label}, which "
                f"allows {allows}: target host {request.target_host} holds "
                f"{_names(on[request.target_host], servers)} already (or "
                "will); Nova would refuse it there: choose another host"))
            continue
        if not free:
            taken = sorted(h for h in pool if len(on[h]) >= limit)
            # Entering maintenance promises an empty host: a member that
            # cannot leave refuses the whole operation before it starts.
            refuse = (_must_empty if request.op is
                      Operation.MAINTENANCE_ENTER else _refused)
            verdicts[member] = refuse(request, (
                f"member of anti-affinity server group {label}, which "
                f"allows {allows}: every host left to it holds its share "
                f"already ({', '.join(taken) or 'no enabled host is left'})"
                ": it cannot move without breaking the policy; enable "
                "another host, or move a member elsewhere first"))
            continue
        on[free[0]].append(member)
        moving.append(member)
        verdicts[member] = Verdict(PASS, (
            f"anti-affinity server group {label}: goes to a host without "
            f"a member (e.g. {free[0]})"))
    if len(moving) > 1:
        for member in moving:
            verdicts[member] = Verdict(PASS, (
                f"{verdicts[member].message}; its group's {len(moving)} "
                "members move one at a time"), {"exclusive": [group.id]})
    return verdicts
