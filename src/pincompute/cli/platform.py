"""Platform verbs: ``project``, ``cluster``, ``node``, ``token`` (sub-commands each).

``project create|list|members|add-member|remove-member|quota|usage``; ``cluster
list|add|remove`` (a running region grows and shrinks: issue 10);
``node list|cordon|uncordon|drain`` (a node is found in whichever member cluster
has it unless ``--cluster`` says); ``token create|list|revoke`` — ``token
create`` prints the new token alone on its last line, so ``$(pincompute token
create ... | tail -1)`` captures it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from pincompute.sdk import Client, resolve_kind

from .common import FAILED, NOT_FOUND, USAGE, OutputOpt, ProjectOpt, console, fail, session
from .output import age, check_format, grid, lookup, node_status, print_data, print_objects

project_app = typer.Typer(no_args_is_help=True, help="Projects (tenants): create, members, "
                                                     "usage.")
cluster_app = typer.Typer(no_args_is_help=True, help="Member clusters of the region.")
node_app = typer.Typer(no_args_is_help=True, help="Nodes: list, cordon, uncordon, drain.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens: create, list, revoke.")

Role = Annotated[str, typer.Option(help="viewer, editor or admin")]
ROLES = ("viewer", "editor", "admin")


def _role(role: str) -> str:
    if role not in ROLES:
        raise fail(f"--role {role}: unknown role", code=USAGE, hint="viewer, editor or admin")
    return role


# -- projects -----------------------------------------------------------------------------------

@project_app.command("create")
def project_create(
    name: str,
    display_name: Annotated[str | None, typer.Option(help="a human name")] = None,
    admin: Annotated[list[str] | None, typer.Option(help="a user made project admin")] = None,
) -> None:
    """Create a project (platform admins)."""
    with session() as pc:
        pc.create_project(name, display_name=display_name,
                          members=[{"user": u, "role": "admin"} for u in admin or ()])
    console.print(f"project/{name} created", highlight=False)


@project_app.command("list")
def project_list(out: OutputOpt = "table") -> None:
    """The projects you can see."""
    check_format(out)
    with session() as pc:
        items = pc.list("project").items
    print_objects(resolve_kind("project"), items, output=out)


@project_app.command("members")
def project_members(project: Annotated[str | None, typer.Argument()] = None) -> None:
    """A project's members and their roles."""
    with session(project=project) as pc:
        name = project or pc.project
        if not name:
            raise fail("which project?", code=USAGE)
        members = pc.members(name)
    if not members:
        console.print(f"project {name} has no members (platform admins only)")
        return
    grid(["USER", "ROLE"], [(m.get("user"), m.get("role")) for m in members])


@project_app.command("add-member")
def project_add_member(project: str, user: str, role: Role = "viewer") -> None:
    """Give a user a role in a project (or change it)."""
    with session() as pc:
        pc.set_member(project, user, _role(role))
    console.print(f"{user} is {role} of project {project}", highlight=False)


@project_app.command("remove-member")
def project_remove_member(project: str, user: str) -> None:
    """Take a user out of a project."""
    with session() as pc:
        pc.set_member(project, user, None)
    console.print(f"{user} removed from project {project}", highlight=False)


@project_app.command("quota")
def project_quota(
    project: Annotated[str | None, typer.Argument()] = None,
    tier: Annotated[str | None, typer.Option(
        help="the tier to set: reserved, ondemand or preemptible")] = None,
    cpu: Annotated[str | None, typer.Option(help="e.g. 4 or 500m")] = None,
    memory: Annotated[str | None, typer.Option(help="e.g. 8Gi")] = None,
    gpu: Annotated[str | None, typer.Option(help="e.g. 1")] = None,
    pods: Annotated[str | None, typer.Option(help="e.g. 20")] = None,
) -> None:
    """Show a project's quota per tier, or set one tier's (platform admins)."""
    amounts = {k: v for k, v in (("cpu", cpu), ("memory", memory), ("gpu", gpu),
                                 ("pods", pods)) if v is not None}
    if amounts and tier not in ("reserved", "ondemand", "preemptible"):
        raise fail("which tier?", code=USAGE, hint="--tier reserved|ondemand|preemptible")
    with session(project=project) as pc:
        name = project or pc.project
        if not name:
            raise fail("which project?", code=USAGE)
        quota = pc.quota(name)
        if amounts:
            assert tier is not None
            quota = pc.set_quota(name, {**quota, tier: {**(quota.get(tier) or {}),
                                                        **amounts}})
    rows = [(t, r, (quota.get(t) or {}).get(r, "-")) for t in ("reserved", "ondemand",
                                                              "preemptible")
            for r in ("cpu", "memory", "gpu", "pods") if (quota.get(t) or {}).get(r)]
    if not rows:
        console.print(f"project {name} has no quota (nothing limits it)", highlight=False)
        return
    grid(["TIER", "RESOURCE", "QUOTA"], rows)


@project_app.command("usage")
def project_usage(project: Annotated[str | None, typer.Argument()] = None,
                  out: OutputOpt = "table") -> None:
    """What a project is charged per tier against its quota, and what runs."""
    with session(project=project) as pc:
        usage = pc.usage(project)
    if out in ("yaml", "json"):
        print_data(usage, output=out)
        return
    rows = []
    for tier, figures in (usage.get("tiers") or {}).items():
        for resource in ("cpu", "memory", "gpu", "pods"):
            used = lookup(figures, f".used.{resource}")
            quota = lookup(figures, f".quota.{resource}")
            if used is not None or quota is not None:
                rows.append((tier, resource, used or 0, quota or "no quota"))
        if figures.get("queued"):
            rows.append((tier, "queued workloads", figures["queued"], "-"))
    if not rows:
        console.print(f"project {usage.get('project')}: nothing charged, no quota set")
        return
    grid(["TIER", "RESOURCE", "USED", "QUOTA"], rows)


# -- clusters -----------------------------------------------------------------------------------

@cluster_app.command("list")
def cluster_list(out: OutputOpt = "table") -> None:
    """The region's member clusters: zone, health, nodes."""
    check_format(out)
    with session() as pc:
        items = pc.list("cluster").items
    print_objects(resolve_kind("cluster"), items, output=out)


@cluster_app.command("add")
def cluster_add(
    zone: Annotated[str, typer.Argument(help="the zone (an existing one, or a new one)")],
    name: Annotated[str | None, typer.Option(help="default: the next free <zone>-<n>")] =
        None,
    nodes: Annotated[int | None, typer.Option(min=0, help="its general pool's nodes")] = None,
) -> None:
    """Add a member cluster to a zone of the running region; new workloads land on it at once."""
    with session(timeout=180.0) as pc:
        added = pc.add_cluster(zone, name=name, nodes=nodes)
    console.print(f"cluster/{lookup(added, '.metadata.name') or name} added to zone {zone}",
                  highlight=False)


@cluster_app.command("remove")
def cluster_remove(
    name: str,
    no_drain: Annotated[bool, typer.Option(
        "--no-drain", help="do not wait for its workloads to move away")] = False,
    timeout: Annotated[int, typer.Option(min=1, max=3600,
                                         help="seconds to wait for the drain")] = 300,
) -> None:
    """Drain a member cluster (its workloads move to the others) and remove it."""
    with session(timeout=timeout + 30.0) as pc:
        pc.remove_cluster(name, drain=not no_drain, timeout_seconds=int(timeout))
    console.print(f"cluster/{name} removed", highlight=False)


# -- nodes --------------------------------------------------------------------------------------

ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="the member cluster (default: every one / the one that has the node)")]


def _clusters(pc: Client, cluster: str | None) -> list[str]:
    if cluster:
        return [cluster]
    return [c["metadata"]["name"] for c in pc.list("cluster").items]


@node_app.command("list")
def node_list(cluster: ClusterOpt = None, out: OutputOpt = "table") -> None:
    """Nodes of one member cluster, or of all."""
    check_format(out)
    rows: list[tuple[str, Mapping[str, Any]]] = []
    with session() as pc:
        for name in _clusters(pc, cluster):
            rows.extend((name, n) for n in pc.nodes(name))
    if out in ("yaml", "json", "name"):
        print_objects(resolve_kind("node"), [n for _, n in rows], output=out)
        return
    grid(["NAME", "CLUSTER", "STATUS", "POOL", "TIER", "AGE"], [
        (lookup(n, ".metadata.name"), c, node_status(n),
         lookup(n, ".metadata.labels.pincompute\\.io/node-pool"),
         lookup(n, ".metadata.labels.pincompute\\.io/tier"),
         age(lookup(n, ".metadata.creationTimestamp"))) for c, n in rows])


def _find(pc: Client, node: str, cluster: str | None) -> str:
    if cluster:
        return cluster
    for name in _clusters(pc, None):
        if any(n["metadata"]["name"] == node for n in pc.nodes(name)):
            return name
    raise fail(f"no member cluster has a node {node!r}", code=NOT_FOUND,
               hint="pincompute node list")


def _node_op(operation: str, doc: str) -> Any:
    def command(node: str, cluster: ClusterOpt = None) -> None:
        with session() as pc:
            where = _find(pc, node, cluster)
            getattr(pc, operation)(where, node)
        console.print(f"node/{node} ({where}) {operation}ed", highlight=False)
    command.__doc__ = doc
    return command


node_app.command("cordon")(_node_op("cordon", "Mark a node unschedulable."))
node_app.command("uncordon")(_node_op("uncordon", "Let pods be scheduled on a node again."))


@node_app.command("drain")
def node_drain(
    node: str,
    cluster: ClusterOpt = None,
    timeout: Annotated[int, typer.Option(min=0, max=3600, help="seconds to keep evicting "
                                         "(0: one pass)")] = 60,
) -> None:
    """Cordon a node and evict its pods (within their disruption budgets)."""
    with session(timeout=timeout + 30.0) as pc:
        where = _find(pc, node, cluster)
        result = pc.drain(where, node, timeout_seconds=timeout)
    evicted = result.get("evicted") or []
    if result.get("complete", True):
        console.print(f"node/{node} ({where}) drained: {len(evicted)} pods evicted",
                      highlight=False)
        return
    blocked = "; ".join(f"{b.get('pod')}: {b.get('reason')}" for b in
                        (result.get("blocked") or [])[:3])
    raise fail(f"node/{node} ({where}) cordoned, {len(evicted)} pods evicted, "
               f"{result.get('remaining')} left after {timeout}s ({blocked})",
               code=FAILED, hint="their disruption budgets hold them; try again later")


# -- tokens -------------------------------------------------------------------------------------

@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="whom the token stands for")],
    project: ProjectOpt = None,
    role: Annotated[str | None, typer.Option(
        help="viewer, editor or admin in --project (a token for that project only)")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="a platform admin's token")] = False,
    ttl: Annotated[int | None, typer.Option(help="seconds until it expires")] = None,
) -> None:
    """Create a token; it is printed alone on the last line, shown this once."""
    if role is not None:
        _role(role)
        if not project:
            raise fail("--role needs --project", code=USAGE)
    with session() as pc:
        made = pc.create_token(user, project=project, role=role, admin=admin,
                               expires_in_seconds=ttl)
    scope = "platform admin" if admin else (f"{role} of project {project}" if project
                                           else "roles from projects' members")
    console.print(f"token {made.get('id', '')} for {user} ({scope}); keep it secret, it is "
                  "not shown again:", highlight=False, soft_wrap=True)
    print(made["token"], flush=True)


@token_app.command("list")
def token_list(out: OutputOpt = "table") -> None:
    """Tokens (ids and whom they stand for, never the secrets)."""
    with session() as pc:
        items = pc.tokens()
    if out in ("yaml", "json"):
        print_data({"items": items}, output=out)
        return
    grid(["ID", "USER", "ADMIN", "PROJECT", "ROLE", "CREATED", "EXPIRES"], [
        (t.get("id"), t.get("user"), t.get("admin"), t.get("project"), t.get("role"),
         t.get("created") or t.get("createdAt"), t.get("expires") or t.get("expiresAt"))
        for t in items])


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Revoke a token: it stops working at once."""
    with session() as pc:
        pc.revoke_token(token_id)
    console.print(f"token {token_id} revoked", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")
    app.add_typer(cluster_app, name="cluster")
    app.add_typer(node_app, name="node")
    app.add_typer(token_app, name="token")
