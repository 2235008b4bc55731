"""Network topology: sites, broadcast domains, hosts, storage and WAN links, as solver resources.

Model (docs/model.md, Infrastructure). Every link is full duplex: each direction is its
own resource of the link's capacity. A host has a NIC (``tx`` and ``rx``) and a disk
(``read`` and ``write``); a broadcast domain has an uplink to its site core (``up``
and ``down``, with an optional one-way latency); a site has one switching core
resource shared by all traffic through it; a storage system attaches to its site core
by a link whose directions are its read and write rates; a WAN link joins two sites
(one resource per direction, with a latency). Paths:

- same host: nothing but the disks named (disk to disk: disk read, disk write);
- same domain: source NIC tx, destination NIC rx (the domain switch does not block);
- other domain of the site: NIC tx, source uplink up, site core, destination uplink
  down, NIC rx;
- other site: as above, with the WAN links of the path and every core crossed (both
  ends and any transit site).

A disk endpoint adds the disk read before the NIC as a source, the disk write after
the NIC as a destination; a storage endpoint is its read link as a source, its write
link as a destination. Latency is the sum of the domain uplink latencies and WAN
latencies crossed, paid once per transfer. Multi-site routes take the least-latency
path of the WAN graph (networkx; ties as networkx breaks them, deterministically).

Routes are cached; the cache is dropped only when the topology grows. A failed link
keeps its routes and has capacity 0, so its flows stall until repair (the owner may
abort them); overlapping failures of one link nest, and it returns at the last repair. Resource names: ``core:<site>``, ``uplink:<site>/<domain>:up|down``,
``nic:<host>:tx|rx``, ``disk:<host>:read|write``, ``storage:<name>:read|write``,
``wan:<a>-<b>:<from>><to>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType

import networkx as nx
import simpy

from sim.infra.solver import FlowSolver

__all__ = ["Endpoint", "Network"]

NIC, DISK, STORAGE = "nic", "disk", "storage"

PAIR_CACHE = 1 << 16
"""Routes cached per (source, destination) pair, at most: past it the cache starts over (a miss
costs ~20 µs; the pairs a run repeats, such as a VM's nightly backup, are cached again at once)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a transfer: a host's memory (its NIC), a host's disk, or a storage system.

    Build with ``Endpoint.nic("east/bd1/h03")``, ``Endpoint.disk(...)``, ``Endpoint.storage("vault")``.
    A frozen dataclass: hashable, compared by value, so usable as a cache key.
    """

    kind: str
    name: str

    @classmethod
    def nic(cls, host: str) -> Endpoint:
        return cls(NIC, host)

    @classmethod
    def disk(cls, host: str) -> Endpoint:
        return cls(DISK, host)

    @classmethod
    def storage(cls, name: str) -> Endpoint:
        return cls(STORAGE, name)


@dataclass(frozen=True, slots=True)
class _Host:
    site: str
    domain: str  # "site/domain"
    tx: int
    rx: int
    read: int
    write: int


@dataclass(frozen=True, slots=True)
class _Domain:
    site: str
    up: int
    down: int
    latency: float


class Network:
    """The topology of one run, as a networkx graph, and the solver resources of its links.

    Build before time 0 (``add_site``, ``add_domain``, ``add_host``, ``add_storage``,
    ``add_wan``); then ``route`` gives the solver resources a transfer crosses (bytes move
    only through ``dc.transfers``, sim/infra/transfer.py) and ``fail_link``/``repair_link``
    set a link's capacity to 0 and back. Capacities are bytes/s, latencies seconds.
    """

    def __init__(self, env: simpy.Environment, solver: FlowSolver):
        self.env = env
        self.solver = solver
        self.graph = nx.Graph()  # nodes (kind, name); edges carry the link name
        self._wan_graph = nx.Graph()  # sites, joined by WAN links weighted by latency
        self._cores: dict[str, int] = {}
        self._domains: dict[str, _Domain] = {}
        self._hosts: dict[str, _Host] = {}
        self._storage: dict[str, tuple[str, int, int]] = {}
        self._wan: dict[tuple[str, str], tuple[int, float, str]] = {}  # (from, to) -> resource, latency, link
        self._links: dict[str, tuple[tuple[int, float], ...]] = {}  # failable link -> (resource, capacity)
        self._failed: dict[str, int] = {}  # link -> failures not yet repaired
        self.failed_links = MappingProxyType(self._failed)  # the same, read-only and live
        self._routes: dict[tuple[Endpoint, Endpoint], tuple[tuple[int, ...], float]] = {}
        self._site_paths: dict[tuple[str, str], list[str]] = {}
        self._route_links: dict[tuple[Endpoint, Endpoint], tuple[str, ...]] = {}

    # ------------------------------------------------------------------ building
    def add_site(self, site: str, core: float) -> None:
        """A site with a switching core of ``core`` bytes/s (one resource, ``core:<site>``)."""
        if site in self._cores:
            raise ValueError(f"site {site!r} already exists")
        self._new_link_name(site)
        rid = self.solver.add_resource(f"core:{site}", core)
        self._cores[site] = rid
        self._links[site] = ((rid, float(core)),)
        self.graph.add_node(("site", site))
        self._wan_graph.add_node(site)
        self._changed()

    def add_domain(self, site: str, domain: str, uplink: float, latency: float = 0.0) -> None:
        """Broadcast domain ``site/domain`` with a full-duplex uplink of ``uplink`` bytes/s each way."""
        self._need_site(site)
        name = f"{site}/{domain}"
        if name in self._domains:
            raise ValueError(f"domain {name!r} already exists")
        if latency < 0:
            raise ValueError(f"uplink latency must be >= 0 s, got {latency}")
        self._new_link_name(name)
        up = self.solver.add_resource(f"uplink:{name}:up", uplink)
        down = self.solver.add_resource(f"uplink:{name}:down", uplink)
        self._domains[name] = _Domain(site, up, down, float(latency))
        self._links[name] = ((up, float(uplink)), (down, float(uplink)))
        self.graph.add_node(("domain", name))
        self.graph.add_edge(("domain", name), ("site", site), link=name)
        self._changed()

    def add_host(self, host: str, site: str, domain: str, nic: float, disk_read: float, disk_write: float) -> None:
        """Host ``site/domain/hNN``: a full-duplex NIC of ``nic`` bytes/s and a disk's read and write rates."""
        dname = f"{site}/{domain}"
        if dname not in self._domains:
            raise ValueError(f"unknown domain {dname!r}")
        if not host.startswith(dname + "/"):
            raise ValueError(f"host {host!r} must be named {dname}/<host>")
        if host in self._hosts:
            raise ValueError(f"host {host!r} already exists")
        add = self.solver.add_resource
        self._hosts[host] = _Host(
            site, dname, add(f"nic:{host}:tx", nic), add(f"nic:{host}:rx", nic),
            add(f"disk:{host}:read", disk_read), add(f"disk:{host}:write", disk_write),
        )
        self.graph.add_node(("host", host))
        self.graph.add_edge(("host", host), ("domain", dname), link=host)
        self._changed()

    def add_storage(self, name: str, site: str, read: float, write: float) -> None:
        """Storage system ``name`` on ``site``'s core, by a link of ``read`` (out) and ``write`` (in) bytes/s."""
        self._need_site(site)
        if name in self._storage:
            raise ValueError(f"storage {name!r} already exists")
        add = self.solver.add_resource
        self._storage[name] = (site, add(f"storage:{name}:read", read), add(f"storage:{name}:write", write))
        self.graph.add_node(("storage", name))
        self.graph.add_edge(("storage", name), ("site", site), link=f"storage:{name}")
        self._changed()

    def add_wan(self, site_a: str, site_b: str, bandwidth: float, latency: float) -> None:
        """Full-duplex WAN link ``a-b`` of ``bandwidth`` bytes/s each way and one-way ``latency`` seconds."""
        self._need_site(site_a)
        self._need_site(site_b)
        if site_a == site_b:
            raise ValueError(f"a WAN link joins two sites, got {site_a!r} twice")
        if self._wan_graph.has_edge(site_a, site_b):
            raise ValueError(f"sites {site_a!r} and {site_b!r} are already joined")
        if latency < 0:
            raise ValueError(f"WAN latency must be >= 0 s, got {latency}")
        name = f"{site_a}-{site_b}"
        self._new_link_name(name)
        ab = self.solver.add_resource(f"wan:{name}:{site_a}>{site_b}", bandwidth)
        ba = self.solver.add_resource(f"wan:{name}:{site_b}>{site_a}", bandwidth)
        self._wan[(site_a, site_b)] = (ab, float(latency), name)
        self._wan[(site_b, site_a)] = (ba, float(latency), name)
        self._links[name] = ((ab, float(bandwidth)), (ba, float(bandwidth)))
        self.graph.add_edge(("site", site_a), ("site", site_b), link=name)
        self._wan_graph.add_edge(site_a, site_b, latency=float(latency))
        self._changed()

    # ------------------------------------------------------------------ routes and transfers
    def route(self, src: Endpoint, dst: Endpoint) -> tuple[tuple[int, ...], float]:
        """Resource ids crossed from ``src`` to ``dst``, and the path latency in seconds (cached)."""
        hit = self._routes.get((src, dst))
        if hit is None:
            hit = self._cache_path(src, dst)[0]
        return hit

    def links_on(self, src: Endpoint, dst: Endpoint) -> tuple[str, ...]:
        """Names of the failable links (domain uplinks, site cores, WAN links) a transfer crosses (cached)."""
        hit = self._route_links.get((src, dst))
        if hit is None:
            hit = self._cache_path(src, dst)[1]
        return hit

    def _cache_path(self, src: Endpoint, dst: Endpoint):
        resources, latency, links = self._compute_path(src, dst)
        key = (src, dst)
        if len(self._routes) >= PAIR_CACHE:  # bounded: a year of moves between random host pairs
            self._routes.clear()             # would otherwise keep one entry per pair ever used
            self._route_links.clear()
        route = self._routes[key] = (resources, latency)
        self._route_links[key] = links
        return route, links

    def bottleneck(self, src: Endpoint, dst: Endpoint) -> float:
        """The smallest capacity (bytes/s) on the route from ``src`` to ``dst``: the rate a transfer
        alone on it would get (0 while a link on it has failed). Other traffic is not counted."""
        return self.bottleneck_of(self.route(src, dst)[0])

    def bottleneck_of(self, resources: tuple[int, ...]) -> float:
        """The smallest capacity (bytes/s) among ``resources`` (a route's): see ``bottleneck``."""
        capacity = self.solver.capacity
        return min((capacity(r) for r in resources), default=float("inf"))

    # ------------------------------------------------------------------ failures
    def fail_link(self, name: str) -> None:
        """Link ``name`` (``site/domain`` uplink, ``site`` core, ``a-b`` WAN) goes to capacity 0: its flows stall.

        Overlapping failures of one link nest: it comes back at the last repair.
        """
        links = self._link(name)
        count = self._failed.get(name, 0)
        self._failed[name] = count + 1
        if count == 0:
            self.solver.set_capacities({rid: 0.0 for rid, _ in links})

    def repair_link(self, name: str) -> None:
        """One failure of link ``name`` is repaired; at the last, it gets its built capacity back and stalled flows resume."""
        links = self._link(name)
        count = self._failed.get(name, 0)
        if count == 0:
            return  # not failed: nothing to repair
        if count > 1:
            self._failed[name] = count - 1
            return
        del self._failed[name]
        self.solver.set_capacities(dict(links))

    def link_names(self) -> list[str]:
        """Names ``fail_link`` accepts: site cores, domain uplinks and WAN links, sorted."""
        return sorted(self._links)

    def is_failed(self, name: str) -> bool:
        """Whether link ``name`` has a failure not yet repaired."""
        self._link(name)
        return name in self._failed

    def storage_resources(self, name: str) -> tuple[int, int]:
        """The (read, write) resource ids of storage ``name``, e.g. for ``solver.fail_resource``."""
        _, read, write = self._storage[name]
        return read, write

    # ------------------------------------------------------------------ internals
    def _compute_path(self, src: Endpoint, dst: Endpoint) -> tuple[tuple[int, ...], float, tuple[str, ...]]:
        """Resources crossed, path latency, and the failable links crossed (see ``links_on``)."""
        s_site, s_dom, s_local, s_out = self._leave(src)
        d_site, d_dom, d_local, d_in = self._enter(dst)
        if src.kind != STORAGE and dst.kind != STORAGE and src.name == dst.name:
            return tuple(s_local + d_local), 0.0, ()
        if src.kind == STORAGE and src == dst:
            return (s_out[0], d_in[-1]), 0.0, ()  # a copy inside one storage system
        if s_dom is not None and s_dom == d_dom:
            return tuple(s_out + d_in), 0.0, ()
        path: list[int] = list(s_out)
        links: list[str] = []
        latency = 0.0
        if s_dom is not None:
            dom = self._domains[s_dom]
            path.append(dom.up)
            links.append(s_dom)
            latency += dom.latency
        path.append(self._cores[s_site])
        links.append(s_site)
        if s_site != d_site:
            sites = self._site_path(s_site, d_site)
            for a, b in pairwise(sites):
                rid, lat, name = self._wan[(a, b)]
                path.append(rid)
                path.append(self._cores[b])
                links += (name, b)
                latency += lat
        if d_dom is not None:
            dom = self._domains[d_dom]
            path.append(dom.down)
            links.append(d_dom)
            latency += dom.latency
        path.extend(d_in)
        return tuple(path), latency, tuple(links)

    def _leave(self, ep: Endpoint) -> tuple[str, str | None, list[int], list[int]]:
        """Site, domain, resources used on the same host, resources to the domain switch."""
        if ep.kind == STORAGE:
            site, read, _ = self._need_storage(ep.name)
            return site, None, [], [read]
        h = self._need_host(ep)
        if ep.kind == DISK:
            return h.site, h.domain, [h.read], [h.read, h.tx]
        return h.site, h.domain, [], [h.tx]

    def _enter(self, ep: Endpoint) -> tuple[str, str | None, list[int], list[int]]:
        if ep.kind == STORAGE:
            site, _, write = self._need_storage(ep.name)
            return site, None, [], [write]
        h = self._need_host(ep)
        if ep.kind == DISK:
            return h.site, h.domain, [h.write], [h.rx, h.write]
        return h.site, h.domain, [], [h.rx]

    def _site_path(self, a: str, b: str) -> list[str]:
        key = (a, b)
        path = self._site_paths.get(key)
        if path is None:
            try:
                path = nx.shortest_path(self._wan_graph, a, b, weight="latency")
            except nx.NetworkXNoPath:
                raise ValueError(f"no WAN path from site {a!r} to site {b!r}") from None
            self._site_paths[key] = path
        return path

    def _need_host(self, ep: Endpoint) -> _Host:
        if ep.kind not in (NIC, DISK):
            raise ValueError(f"unknown endpoint kind {ep.kind!r}")
        h = self._hosts.get(ep.name)
        if h is None:
            raise ValueError(f"unknown host {ep.name!r}")
        return h

    def _need_storage(self, name: str) -> tuple[str, int, int]:
        st = self._storage.get(name)
        if st is None:
            raise ValueError(f"unknown storage {name!r}")
        return st

    def _need_site(self, site: str) -> None:
        if site not in self._cores:
            raise ValueError(f"unknown site {site!r}")

    def _link(self, name: str) -> tuple[tuple[int, float], ...]:
        links = self._links.get(name)
        if links is None:
            raise ValueError(f"unknown link {name!r}; links are {self.link_names()}")
        return links

    def _new_link_name(self, name: str) -> None:
        if name in self._links:
            raise ValueError(f"link name {name!r} is already used")

    def _changed(self) -> None:
        self._routes.clear()
        self._route_links.clear()
        self._site_paths.clear()
