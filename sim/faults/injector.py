"""Fault injection: scheduled (``at`` + ``target``), stochastic (a distribution per target) and
replayed from a trace.

Each fault entry becomes SimPy timeouts. A stochastic entry runs one alternating renewal process
per target: a time to failure drawn from ``time_to_failure`` (or exponential with mean ``mtbf``,
the shortcut), the fault, its repair drawn from ``time_to_repair`` (or the fixed ``repair``,
default ``infrastructure.repair``), then the next time to failure. Both draws come from the
stream ``faults/<kind>.<k>/<target>`` (k the entry's ordinal among entries of its kind, so other
entries never shift its draws; the streams of an entry's targets are made at once by
``ctx.streams.get_many``), in the order time to failure, repair; ``sim.faults.distributions``
draws each in O(1). A scheduled entry applies its fault once at ``at`` to each target its selector
matches (a drawn repair per target, from the same stream). A ``trace`` entry replays a file
(``sim.faults.trace``, read and checked when the run is built): each target's merged outages as
one chain of timeouts. Faults after the scenario's duration never happen.

Effects (docs/model.md, Faults): ``host_crash`` stops a host and its VMs;
``broadcast_domain_outage`` and ``site_outage`` stop every host in them;
``link_failure`` sets a link's capacity to 0 (its flows stall until repair);
``disk_failure`` destroys what the host's disk stores and sends the host to repair;
``storage_outage`` fails every flow of the storage system; ``vm_crash`` stops one VM,
which restarts in place (its memory stays reserved on its host through detection and
reboot); ``image_drift`` changes one random component of a host's running image (it stays
until something remediates it); ``dimm_errors`` are drawn by ``sim.faults.dimm``. Every
occurrence is a row of ``faults``. Effects go through the ``Datacenter``, which publishes
them on its failure bus (``sim.infra.events``); nothing here reads a mechanism.

VMs created by a mechanism with an ``mtbf`` of their own fail here too, through the same path:
an alternating renewal on the clock (stream ``faults/vm/<vm>``) of exponential times to failure
(mean ``vm.mtbf``) and exponential repairs (mean ``vm.repair``), as for any ``vm_crash``.
The failure epochs and draws do not depend on the VM's state: at an epoch a running VM crashes
(a ``vm_crash`` row, then ``vm`` ``up`` on the bus after the repair: its owner decides what the
repaired VM does); a VM that is not running is left alone and the schedule goes on as if it had
failed (the repair interval passes, then the next time to failure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from sim.core.causes import Cause, HostDown, LinkDown, StorageDown, VmCrash
from sim.faults import distributions, trace
from sim.faults.distributions import Sampler
from sim.infra import events as ev
from sim.infra.datacenter import RUNNING, Datacenter
from sim.scenario.names import select

if TYPE_CHECKING:
    from sim.core.context import Context


@dataclass(slots=True)
class _Renewal:
    kind: str
    target: str
    ttf: Sampler
    repair: Sampler
    rng: np.random.Generator


@dataclass(slots=True)
class _Chain:
    """One target's outages of a replayed trace: ``start``/``end`` from position ``i`` on."""

    kind: str
    target: str
    start: list[float]
    end: list[float]
    i: int

# Kinds injected here; the others are handled by their mechanisms' injectors.
GENERIC_KINDS = (
    "host_crash", "broadcast_domain_outage", "link_failure", "site_outage", "disk_failure",
    "storage_outage", "vm_crash", "image_drift",
)
ONE_SHOT = ("vm_crash", "image_drift")  # nothing to undo at a fixed repair time


class FaultInjector:
    """``source`` is the scenario file: trace paths are relative to it, and problems name it.
    Traces are read and checked here, before time 0 (an ``InputError``, like a placement that
    cannot fit)."""

    def __init__(self, ctx: Context, dc: Datacenter, source: str = "scenario"):
        self.ctx = ctx
        self.dc = dc
        self.env = ctx.env
        self.duration = ctx.scenario.duration
        self.default_repair = ctx.scenario.infrastructure.repair
        self.replays: dict[int, trace.Replay] = {}
        self.empirical: dict[int, Sampler] = {}  # id(distribution) -> its column, read here
        for i, spec in enumerate(ctx.scenario.faults):
            if spec.kind == "trace":
                self.replays[i] = trace.load(spec, i, source, float(self.duration), self._selected)
            for name in ("time_to_failure", "time_to_repair"):
                dist = getattr(spec, name, None)
                if dist is not None and dist.family == "empirical":
                    self.empirical[id(dist)] = distributions.read_empirical(dist, source, f"faults.{i}.{name}")

    def _sampler(self, dist) -> Sampler:
        return self.empirical[id(dist)] if dist.family == "empirical" else distributions.sampler(dist)

    def _selected(self, kind: str, globs) -> list[str]:
        """A trace's targets of ``kind``: those ``globs`` select, in name order."""
        return sorted(select(globs, self.targets(kind)))

    # -- targets ------------------------------------------------------------------------------------
    def targets(self, kind: str) -> list[str]:
        dc = self.dc
        match kind:
            case "host_crash" | "disk_failure" | "image_drift":
                return list(dc.hosts)
            case "broadcast_domain_outage":
                return list(dc.domains)
            case "site_outage":
                return list(dc.sites)
            case "link_failure":
                return dc.network.link_names()
            case "storage_outage":
                return list(dc.storage)
            case "vm_crash":
                return [n for n, vm in dc.vms.items() if vm.owner is None]
        raise ValueError(kind)

    def _match(self, kind: str, target) -> list[str]:
        names = self.targets(kind)
        if target is None:
            return names
        globs = [target] if isinstance(target, str) else list(target)
        return select(globs, names)

    # -- wiring ---------------------------------------------------------------------------------------
    def start(self) -> None:
        ordinal: dict[str, int] = {}
        for i, spec in enumerate(self.ctx.scenario.faults):
            kind = spec.kind
            k = ordinal.get(kind, 0)
            ordinal[kind] = k + 1
            if kind == "trace":
                self._replay(i, self.replays[i])
                continue
            if kind not in GENERIC_KINDS:
                continue
            repair = self._repair_sampler(spec)
            targets = self._match(kind, spec.target)
            if spec.at is not None:
                if spec.at <= self.duration:
                    self._schedule(kind, k, targets, spec.at, repair)
                continue
            ttf = (distributions.exponential(spec.mtbf) if spec.mtbf is not None
                   else self._sampler(spec.time_to_failure))
            # One stream per target, made for all targets at once (a fleet has a stream per VM).
            rngs = self.ctx.streams.get_many([f"faults/{kind}.{k}/{t}" for t in targets])
            for t, rng in zip(targets, rngs, strict=True):
                self._renew(_Renewal(kind, t, ttf, repair, rng))
        for vm in self.dc.vms.values():
            if vm.mtbf is not None:
                self._vm_renew(vm, self.ctx.streams.get(f"faults/vm/{vm.name}"))

    def _repair_sampler(self, spec) -> Sampler:
        dist = getattr(spec, "time_to_repair", None)
        if dist is not None:
            return self._sampler(dist)
        repair = getattr(spec, "repair", None)
        return distributions.fixed(repair if repair is not None else self.default_repair)

    def _at(self, delay: float, callback, *args) -> None:
        """``callback(*args, event)`` after ``delay``; nothing at all, not even the bound callback, when
        that is after the run (it never happens)."""
        if self.env.now + delay <= self.duration:
            self.env.timeout(delay).callbacks.append(partial(callback, *args) if args else callback)

    def _schedule(self, kind: str, k: int, targets: list[str], at: float, repair: Sampler) -> None:
        if repair.family == "deterministic":
            self.env.process(self._scheduled(kind, targets, at, repair.mean))
            return
        rngs = self.ctx.streams.get_many([f"faults/{kind}.{k}/{t}" for t in targets])
        for t, rng in zip(targets, rngs, strict=True):  # a drawn repair per target
            self._at(at, self._scheduled_one, kind, t, repair(rng))

    def _scheduled(self, kind: str, targets: list[str], at: float, repair: float):
        """Waits until ``at``, applies the fault to each target, waits ``repair``, undoes it."""
        yield self.env.timeout(at)
        undo = [self.apply(kind, t, repair) for t in targets]
        if kind in ONE_SHOT:
            return
        yield self.env.timeout(repair)
        for u in undo:
            if u is not None:
                u()

    def _scheduled_one(self, kind: str, target: str, repair: float, _event) -> None:
        undo = self.apply(kind, target, repair)
        if undo is not None:
            self._at(repair, lambda _e: undo())

    # An alternating renewal per target, driven by timeout callbacks (no process per target: a
    # fleet has hundreds of thousands): a drawn time to failure, the fault, its drawn repair, the
    # next time to failure. The draws are those of a loop that draws a time to failure, draws a
    # repair, applies the fault and waits its repair.
    def _renew(self, r: _Renewal) -> None:
        self._at(r.ttf(r.rng), self._fail, r)

    def _fail(self, r: _Renewal, _event) -> None:
        repair = r.repair(r.rng)
        undo = self.apply(r.kind, r.target, repair, r.rng)
        if undo is None:
            self._renew(r)
            return
        self._at(repair, self._repaired, r, undo)

    def _repaired(self, r: _Renewal, undo: Callable[[], None], _event) -> None:
        undo()
        self._renew(r)

    # -- trace replay ---------------------------------------------------------------------------------
    def _replay(self, i: int, replay: trace.Replay) -> None:
        """One chain per target with outages: an event at each outage's start and one at its end."""
        rec = self.ctx.recorder
        entity = f"faults.{i}"
        rec.level(entity, "trace_records", replay.records)
        rec.level(entity, "trace_records_dropped", replay.dropped)
        rec.level(entity, "trace_outages", replay.outages)
        for kind, out in replay.kinds.items():
            if not len(out.node):
                continue
            heads = np.flatnonzero(np.r_[True, out.node[1:] != out.node[:-1]])
            bounds = np.r_[heads, len(out.node)]
            starts, ends, nodes = out.start.tolist(), out.end.tolist(), out.node[heads].tolist()
            for j, n in enumerate(nodes):
                lo, hi = int(bounds[j]), int(bounds[j + 1])
                chain = _Chain(kind, out.targets[n], starts[lo:hi], ends[lo:hi], 0)
                self._at(chain.start[0], self._chain_fail, chain)

    def _chain_fail(self, c: _Chain, _event) -> None:
        now = self.env.now
        end = c.end[c.i]
        undo = self.apply(c.kind, c.target, end - now)
        if undo is None:
            self._chain_next(c, None)
            return
        self._at(end - now, self._chain_repaired, c, undo)

    def _chain_repaired(self, c: _Chain, undo: Callable[[], None], _event) -> None:
        undo()
        self._chain_next(c, None)

    def _chain_next(self, c: _Chain, _event) -> None:
        c.i += 1
        if c.i < len(c.start):
            self._at(c.start[c.i] - self.env.now, self._chain_fail, c)

    # -- a mechanism's VMs ----------------------------------------------------------------------------
    def _vm_renew(self, vm, rng) -> None:
        """The next epoch of a mechanism's VM: an exponential time to failure (mean ``vm.mtbf``)."""
        self._at(float(rng.exponential(vm.mtbf)), self._vm_fail, vm, rng)

    def _vm_fail(self, vm, rng, _event) -> None:
        """An epoch: the repair is drawn whatever the VM's state, so the epochs never depend on it."""
        repair = float(rng.exponential(vm.repair)) if vm.repair else 0.0
        if vm.state != RUNNING:  # nothing to fail; the schedule goes on as if it had
            self._at(repair, self._vm_next, vm, rng)
            return
        now = self.env.now
        self.ctx.recorder.record("faults", kind="vm_crash", target=vm.name, repair_s=repair, end_s=now + repair)
        self.ctx.recorder.trace("faults", "vm_crash", vm.name)
        self.dc.stop_vm(vm, VmCrash(at=now, vm=vm.name), keep_host=True)
        self._at(repair, self._vm_repaired, vm, rng)

    def _vm_next(self, vm, rng, _event) -> None:
        self._vm_renew(vm, rng)

    def _vm_repaired(self, vm, rng, _event) -> None:
        self.dc.vm_repaired(vm)  # its owner brings it back
        self._vm_renew(vm, rng)

    # -- effects -----------------------------------------------------------------------------------------
    def apply(self, kind: str, target: str, repair: float, rng=None) -> Callable[[], None] | None:
        """Applies one fault now; returns what undoes it at repair (None if nothing to undo)."""
        dc = self.dc
        now = self.env.now
        if kind == "vm_crash" and dc.vms[target].state != RUNNING:
            return None  # a guest that is not running cannot crash
        if kind == "image_drift" and not dc.hosts[target].image:
            return None  # a host with no image (in no cluster) has nothing to drift
        end = now if kind in ONE_SHOT else now + repair
        self.ctx.recorder.record("faults", kind=kind, target=target, repair_s=end - now, end_s=end)
        self.ctx.recorder.trace("faults", kind, target)
        match kind:
            case "host_crash":
                host = dc.hosts[target]
                dc.host_down(host, HostDown(at=now, host=target, kind=kind))
                return lambda: dc.host_repaired(host)
            case "disk_failure":
                host = dc.hosts[target]
                dc.disk_failed(host, HostDown(at=now, host=target, kind=kind))
                return lambda: dc.disk_repaired(host)
            case "broadcast_domain_outage" | "site_outage":
                if kind == "broadcast_domain_outage":
                    topic, hosts = ev.DOMAIN, dc.domains[target].hosts
                else:
                    topic, hosts = ev.SITE, dc.sites[target].hosts

                def cause(name: str, kind=kind) -> Cause:
                    return HostDown(at=now, host=name, kind=kind)

                dc.group_down(topic, target, hosts, cause)
                return lambda: dc.group_up(topic, target, hosts)
            case "link_failure":
                dc.link_down(target, LinkDown(at=now, link=target))
                return lambda: dc.link_up(target)
            case "storage_outage":
                st = dc.storage[target]
                dc.storage_down(st, StorageDown(at=now, storage=target))
                return lambda: dc.storage_up(st)
            case "vm_crash":
                # A guest may crash while it is being moved: whatever moves it sees the stop.
                dc.stop_vm(dc.vms[target], VmCrash(at=now, vm=target), keep_host=True)
                return None
            case "image_drift":
                image = dc.hosts[target].image
                r = rng if rng is not None else self.ctx.streams.get(f"faults/image_drift/{target}")
                component = sorted(image)[int(r.integers(len(image)))]
                image[component] = f"{image[component]}+drift{int(r.integers(1, 1_000_000))}"
                return None
        raise ValueError(kind)
