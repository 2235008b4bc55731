"""mechanisms.charging: per-region prices, metered charges, and periodic evaluation of moves to
cheaper sites (docs/operations.md, "charging").

Metering: every VM accrues ``vcpus x vcpu_hour + memory(GiB) x gib_hour`` per hour while it is
in service (from time 0 or ``vm up`` to ``vm down`` on the bus), at the price of the region of the
site it runs in. A metered interval closes when the VM stops, when it changes site, and at the end
of the run: one ``metered`` row each (O(1) per event, never an event per VM per hour). A move to
another site by this mechanism re-prices at the migration's end; a move by another mover
(``live_migration.scope: any``, a ``migrate`` operation) is re-priced at the next evaluation, stop
or end of run (the interval keeps its old price until then).

Evaluation (every ``evaluate_every``, ``sim.core.schedule``), vectorised over all VMs with numpy,
touching no VM object: where each VM is and whether it serves is kept current from ``vm down``/``up``
and ``Datacenter.move`` (``dc.moved``), what does not change (each VM's best move per site, the
redundancy groups) is computed once, and ``report`` evaluates only the VMs touched since the last
evaluation (docs/operations.md, "Cost at scale"):
for each VM in service the cheapest other priced site its placement allows, its service's charge
per hour before and after the move, the egress of the bytes the move carries (memory + disk,
GB = 1e9 bytes, at the source region's ``egress_gb``) and its redundancy possibility (the
largest weighted sum of signals it shares with one other VM: same service 0.4, same shape 0.2,
same name stem 0.2, in another broadcast domain 0.2 (only together with one of the others)).
A proposal is a move with ``delta_per_h`` < 0. ``report`` records each proposal once (again
when its figures change); ``cheapest`` records the proposals whose saving over one evaluation
period exceeds the egress cost and migrates them (live migration, ``scope: any``, memory and
disk over the WAN) to a host its owner allows (``dc.rule_for``) in a broadcast domain holding no
peer it may be redundant with (same service, or same shape and name stem).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim import format as fmt
from sim.core.errors import Problem, show
from sim.core.schedule import every
from sim.infra import events as ev
from sim.infra.datacenter import RUNNING
from sim.mechanisms.base import Mechanism, MechanismConfig, Need
from sim.metrics.meta import Metric
from sim.metrics.summary import count
from sim.metrics.tables import table
from sim.scenario.types import Duration, NonNegFloat

if TYPE_CHECKING:
    from sim.infra.datacenter import VM, Host

KEY = "charging"
HOUR = 3600.0
GiB = 1024.0**3
GB = 1e9
MONTH = 30 * 86400.0  # storage_gb_month: a 30-day month (cloud storage price sheets)
# Redundancy signals and weights (docs/operations.md): a score >= LIKELY means likely redundant.
W_SERVICE, W_SHAPE, W_NAME, W_SPREAD = 0.4, 0.2, 0.2, 0.2
LIKELY = 0.5
_STEM = re.compile(r"[-_.]?\d+$")


class Price(BaseModel):
    """One region's prices (money per vCPU-hour, per GiB-hour of memory, per GB of egress, per GB-month
    of backup storage)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    vcpu_hour: NonNegFloat = 0.0
    gib_hour: NonNegFloat = 0.0
    egress_gb: NonNegFloat = 0.0
    storage_gb_month: NonNegFloat | None = None


class Config(MechanismConfig):
    # Per region (sites carry a region). No default prices: an enabled section prices every region
    # its sites use (the example figures in docs/operations.md are list-price magnitudes).
    prices: dict[str, Price] = Field(default_factory=dict)
    evaluate_every: Duration = 86400.0  # daily: cloud bills are itemised per day
    policy: Literal["report", "cheapest"] = "report"
    # Filled by resolve: storage system -> region (backup storage is priced where it is stored).
    storage_regions: dict[str, str] = Field(default_factory=dict)

    def check_references(self, scenario, path: str) -> list[Problem]:
        if not self.enabled:
            return []
        out = []
        for i, site in enumerate(scenario.infrastructure.sites):
            if site.region not in self.prices:
                have = ", ".join(sorted(self.prices)) or "none"
                out.append(Problem(f"infrastructure.sites.{i}.region",
                                   f"expected a region priced in {path}.prices ({have}), got {show(site.region)}"))
        return out


CHARGES = table(
    "charges", "time_s", "vm:str", "service:str", "from_site:str", "to_site:str", "redundancy_possibility",
    "charge_before_per_h", "charge_after_per_h", "migration_cost", "delta_per_h",
)
# One row per metered interval (closed when the VM stops, changes site, or the run ends).
METERED = table("metered", "time_s", "vm:str", "site:str", "region:str", "start_s", "hours", "cost")


def charging_metrics(t, info) -> dict[str, float]:
    cfg = info.configs.get(KEY)
    m = t["metered"]
    total = float(m["cost"].sum()) if len(m) else 0.0
    backups = t.get("backups")
    if cfg is not None and backups is not None and len(backups) and "bytes" in backups:
        total += _storage_cost(backups, cfg, info.duration_s)
    c = t["charges"]
    mig = t["migrations"]
    done = mig[(mig["trigger"] == KEY) & (mig["outcome"] == "completed")]
    moved = c.merge(done[["time_s", "vm"]], on=["time_s", "vm"]) if len(c) and len(done) else c.iloc[:0]
    return {
        "charging.cost_total": total,
        "charging.proposals": count(c),
        "charging.migrations": count(done),
        "charging.savings_per_h_total": float(-moved["delta_per_h"].sum()) if len(moved) else 0.0,
    }


def _storage_cost(backups, cfg, duration_s: float) -> float:
    """Backup storage held from each backup's time to the end of the run, GB-months at the price of
    the storage system's region (``storage`` column), or the highest storage price without one."""
    prices = {r: p.storage_gb_month for r, p in cfg.prices.items() if p.storage_gb_month is not None}
    if not prices:
        return 0.0
    held = np.maximum(duration_s - backups["time_s"].to_numpy(float), 0.0) / MONTH
    gb = backups["bytes"].to_numpy(float) / GB
    if "storage" in backups:
        price = np.array([prices.get(cfg.storage_regions.get(s, ""), 0.0) for s in backups["storage"]])
    else:
        price = np.full(len(gb), max(prices.values()))
    return float((gb * held * price).sum())


class Charging(Mechanism):
    key = KEY
    Config = Config
    tables = (CHARGES, METERED)
    summaries = (charging_metrics,)
    metrics = (
        Metric("charging.cost_total", "money",
               "charges of every VM while in service (and backup storage when priced)", False, headline=True),
        Metric("charging.proposals", "count", "moves to a cheaper site proposed (charges rows)"),
        Metric("charging.migrations", "count", "moves to a cheaper site carried out (policy cheapest)"),
        Metric("charging.savings_per_h_total", "money/h", "charge per hour saved by the moves carried out", True),
    )
    needs = ("live_migration",)
    naive = True  # metering runs disabled too (charges are metered, nothing is proposed)
    incremental = True  # report: evaluate only the VMs touched since the last evaluation

    @classmethod
    def said(cls, metrics, info):
        """What the VMs cost, the moves to cheaper sites carried out and what they save per hour, or
        the moves proposed (policy report)."""
        text = f"cost {fmt.money(metrics.get('charging.cost_total', 0))}"
        moved = metrics.get("charging.migrations", 0)
        proposed = metrics.get("charging.proposals", 0)
        if moved:
            text += f", {fmt.number(moved)} moves save {fmt.money(metrics.get('charging.savings_per_h_total', 0), per='h')}"
        elif proposed:
            text += f", {fmt.number(proposed)} cheaper moves proposed"
        return text

    @classmethod
    def resolve(cls, config: Config, scenario) -> Config:
        regions = {s.name: s.region for s in scenario.infrastructure.sites}
        st = {s.name: regions.get(s.site, s.site) for s in scenario.infrastructure.storage}
        return config.model_copy(update={"storage_regions": st})

    @classmethod
    def budget(cls, config: Config, scenario) -> list[Need]:
        return [Need("events", "evaluate_every", float(scenario.duration) / config.evaluate_every,
                     "a longer evaluate_every")]

    @classmethod
    def scale(cls, section, factor):
        # Prices and the evaluation period do not grow with the fleet; the evaluation is vectorised.
        return section

    # -- build ------------------------------------------------------------------------------------
    def start(self) -> None:
        dc = self.dc
        prices = self.config.prices
        self.sites = sorted(dc.sites.values(), key=lambda s: s.name)
        self.site_index = {s.name: i for i, s in enumerate(self.sites)}
        zero = Price()
        ps = [prices.get(s.region, zero) for s in self.sites]
        self.priced = np.array([s.region in prices for s in self.sites], dtype=bool)
        if not self.priced.any():
            return  # nothing priced (section absent): nothing to meter
        self.p_vcpu = np.array([p.vcpu_hour for p in ps])
        self.p_gib = np.array([p.gib_hour for p in ps])
        self.p_egress = np.array([p.egress_gb for p in ps])
        vms = sorted(dc.vms.values(), key=lambda v: v.name)
        self.vms = vms
        self.index = {v.name: i for i, v in enumerate(vms)}
        n = len(vms)
        self.vcpus = np.array([v.spec.vcpus for v in vms], dtype=float)
        self.mem_gib = np.array([v.spec.memory / GiB for v in vms], dtype=float)
        self.move_bytes = np.array([v.spec.memory + v.spec.disk for v in vms], dtype=float)
        self.service = _codes([v.service for v in vms])
        self.shape = _codes([(v.spec.vcpus, v.spec.memory, v.spec.disk) for v in vms])
        self.stem = _codes([_STEM.sub("", v.name) for v in vms])
        self.scorer = Scorer(self.service, self.shape, self.stem)
        self.allowed = self._allowed_sites(vms) & self.priced[None, :]
        # rate[i, s]: VM i's charge per hour at site s; best[0][i, s], best[1][i, s]: its cheapest allowed
        # priced site other than s and the rate there (both fixed for the run: computed once).
        self.rate = self.vcpus[:, None] * self.p_vcpu[None, :] + self.mem_gib[:, None] * self.p_gib[None, :]
        self.best = best_moves(self.rate, self.allowed)
        self.since = np.full(n, np.nan)  # start of the open metered interval
        self._closed: list[tuple] = []  # (end, VM index, start, site) of each interval closed, in order
        self.msite = np.full(n, -1, dtype=np.int64)  # its site
        # Each VM's last recorded proposal (to site, delta, from site): a proposal is recorded again
        # only when one of them changes.
        self.last_to = np.full(n, -2, dtype=np.int64)
        self.last_delta = np.full(n, np.nan)
        self.last_from = np.full(n, -2, dtype=np.int64)
        self.pending: dict[int, tuple[int, int, int]] = {}  # VM index -> (domain, service, shape+stem) moving in
        dc.bus.subscribe(ev.VM, self._on_down, phase=ev.DOWN)
        dc.bus.subscribe(ev.VM, self._on_up, phase=ev.UP)
        self.ctx.finalizers.append(self._finish)
        self.domain_index = {d: k for k, d in enumerate(sorted(dc.domains))}
        # Where every VM is, kept current instead of read from 100,000 VMs at each evaluation: the host
        # (its position; -1 none) of each VM and whether it serves. A VM in service changes host only
        # by ``Datacenter.move`` (heard through ``dc.moved``) and stops serving with ``vm down``; the
        # VMs out of service (and those never in service yet) are read again at each evaluation.
        self.host_pos = {h: k for k, h in enumerate(dc.host_list)}
        self.host_pos[None] = -1
        self.host_site = np.array([self.site_index[h.site.name] for h in dc.host_list] + [-1], dtype=np.int64)
        self.host_dom = np.array([self.domain_index[h.domain.name] for h in dc.host_list] + [-1], dtype=np.int64)
        self.where = np.array([self.host_pos[v.host] for v in vms], dtype=np.int64)
        self.serving = np.array([self._serves(v) for v in vms], dtype=bool)
        # A metered interval opens now for every VM placed and in service (``_open`` for all at once).
        opened = np.array([vm.host is not None and not vm.out for vm in vms], dtype=bool)
        self.since[opened] = self.env.now
        self.msite[opened] = self.host_site[self.where[opened]]
        self.touched = np.ones(n, dtype=bool)  # VMs to evaluate again (report): all at first
        self._before = np.zeros(n)  # report: each VM's charge per hour as of its last evaluation
        dc.moved.append(self._moved)
        if self.enabled:
            period = self.config.evaluate_every
            self.schedule = every(self.env, period, self.evaluate, start=period)

    def _allowed_sites(self, vms: list[VM]) -> np.ndarray:
        """allowed[i, s]: VM i's placement selector matches a host of site s (one scan per selector)."""
        hosts = self.dc.hosts
        # Keyed by the selector's identity (the VMs of a workload share one tuple): hashing a tuple of
        # 10,000 host names for each of 100,000 VMs was 10^9 steps.
        cache: dict[int, tuple[tuple[str, ...], np.ndarray]] = {}
        out = np.zeros((len(vms), len(self.sites)), dtype=bool)
        for i, vm in enumerate(vms):
            hit = cache.get(id(vm.allowed))
            if hit is None:
                row = np.zeros(len(self.sites), dtype=bool)
                for h in vm.allowed:
                    host = hosts.get(h)
                    if host is not None:
                        row[self.site_index[host.site.name]] = True
                hit = cache[id(vm.allowed)] = (vm.allowed, row)  # the tuple kept: its id stays its own
            out[i] = hit[1]
        return out

    # -- metering ---------------------------------------------------------------------------------
    def _open(self, i: int, vm: VM) -> None:
        self.since[i] = self.env.now
        self.msite[i] = self.site_index[vm.host.site.name]

    def _close(self, i: int, now: float) -> None:
        """Close VM i's open interval now (if it has one). Its ``metered`` row is written at the end of
        the run (``_rows``), from what is kept here: the close is O(1) and cheap on the hot path of
        every stop (the rows, their order and their figures are those a row per close would give)."""
        since = self.since[i]
        if since != since:  # NaN: none open
            return
        self._closed.append((now, i, since, self.msite[i]))
        self.since[i] = np.nan
        self.msite[i] = -1

    def _rows(self) -> None:
        """The ``metered`` rows of the intervals closed, in the order they closed: hours = (end - start) /
        3600, cost = the VM's rate at the site x hours."""
        if not self._closed:
            return
        t, idx, since, site = (np.array(c) for c in zip(*self._closed, strict=True))
        self._closed = []
        idx, site = idx.astype(np.int64), site.astype(np.int64)
        hours = (t - since) / HOUR
        names = [s.name for s in self.sites]
        regions = [s.region for s in self.sites]
        vms = self.vms
        sites = site.tolist()
        self.ctx.recorder.record_many(
            "metered", time_s=t.tolist(), vm=[vms[i].name for i in idx.tolist()], site=[names[x] for x in sites],
            region=[regions[x] for x in sites], start_s=since.tolist(), hours=hours.tolist(),
            cost=(self.rate[idx, site] * hours).tolist())

    @staticmethod
    def _serves(vm: VM) -> bool:
        return vm.host is not None and not vm.out and vm.state == RUNNING

    def _moved(self, vm: VM) -> None:
        i = self.index.get(vm.name)
        if i is not None:
            self.where[i] = self.host_pos[vm.host]
            self.touched[i] = True

    def _on_down(self, failure) -> None:
        i = self.index.get(failure.subject)
        if i is not None:
            self.serving[i] = False
            self.touched[i] = True
            self._close(i, self.env.now)

    def _on_up(self, failure) -> None:
        i = self.index.get(failure.subject)
        if i is None:
            return
        vm = self.vms[i]
        self.where[i] = self.host_pos[vm.host]
        self.serving[i] = self._serves(vm)
        self.touched[i] = True
        self._close(i, self.env.now)
        if vm.host is not None:
            self._open(i, vm)

    def _reprice(self, i: int) -> None:
        """VM i changed site while in service: close its interval and open one where it runs now."""
        self._close(i, self.env.now)
        vm = self.vms[i]
        if vm.host is not None and not vm.out:
            self._open(i, vm)

    def _finish(self, now: float) -> None:
        for i in np.flatnonzero(~np.isnan(self.since)):
            self._close(int(i), now)
        self._rows()

    # -- evaluation (vectorised) -----------------------------------------------------------------
    def locate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Current site and domain index of every VM (-1 when not placed) and whether it serves. The VMs
        in service are where ``where`` says (kept by ``vm down``/``up`` and ``dc.moved``); the others
        (a few: stopped, booting, never started) are read now. O(VMs) numpy, O(VMs out) Python.
        A VM in service that is paused at this instant (a migration's stop-and-copy) counts as serving."""
        where, serving, pos = self.where, self.serving, self.host_pos
        out = np.flatnonzero(~serving)
        self.touched[out] = True
        for i in out.tolist():
            vm = self.vms[i]
            where[i] = pos[vm.host]
            serving[i] = self._serves(vm)
        return self.host_site[where], self.host_dom[where], serving.copy()  # index -1: the trailing -1

    def evaluate(self, now: float) -> None:
        site, dom, running = self.locate()
        if self.incremental and self.config.policy == "report":
            return self._report_changed(site, dom, running)
        moved = np.flatnonzero((self.msite >= 0) & (site >= 0) & (self.msite != site))
        for i in moved:  # another mover changed its site since it was priced
            self._reprice(int(i))
        ev_ = evaluate_moves(self.rate, self.p_egress, self.move_bytes, self.service, site, running, self.allowed,
                             self.best)
        target, before, after, cost = ev_["target"], ev_["before"], ev_["after"], ev_["cost"]
        delta = after - before
        propose = (target >= 0) & (delta < 0)
        if self.pending:
            propose[list(self.pending)] = False
        cheapest = self.config.policy == "cheapest"
        if cheapest:
            propose &= delta * (self.config.evaluate_every / HOUR) + cost < 0
        idx = np.flatnonzero(propose)
        if cheapest:  # largest saving first; ties by name (index)
            idx = idx[np.lexsort((idx, delta[idx]))]
        hosts = self._choose(idx, target, dom) if cheapest and len(idx) else {}
        svc_before = ev_["service_before"]
        # A proposal is recorded once (again when its figures change), and whenever it is carried out.
        same = (self.last_to[idx] == target[idx]) & (self.last_delta[idx] == delta[idx]) & (self.last_from[idx] == site[idx])
        if hosts:
            same &= ~np.isin(idx, np.fromiter(hosts, np.int64, len(hosts)))
        rows = idx[~same]
        if not len(rows):
            return self._start(hosts)
        self.last_to[rows], self.last_delta[rows], self.last_from[rows] = target[rows], delta[rows], site[rows]
        self._record_charges(rows, site[rows], target[rows], self.scorer.score(dom, rows), svc_before[rows],
                             delta[rows], cost[rows])
        self._start(hosts)

    def _report_changed(self, site: np.ndarray, dom: np.ndarray, running: np.ndarray) -> None:
        """Policy ``report``: only the VMs touched since the last evaluation (a stop, a start, a move, or
        out of service) are evaluated. Prices and each VM's best move are fixed, so an untouched VM's
        proposal (target, delta, site) is the one already recorded, or still none: this records exactly
        what the full evaluation records (the service's charge is computed over every VM), in
        O(touched) numpy plus O(VMs) only when something is recorded."""
        ix = np.flatnonzero(self.touched)
        self.touched[:] = False
        if not len(ix):
            return
        s = site[ix]
        for i in ix[(self.msite[ix] >= 0) & (s >= 0) & (self.msite[ix] != s)].tolist():
            self._reprice(i)  # another mover changed its site since it was priced
        live = running[ix] & (s >= 0)
        here = np.where(live, s, 0)
        before = np.where(live, self.rate[ix, here], 0.0)
        # Each VM's charge per hour where it is (0 out of service), kept for the service totals: it
        # changes only for a VM touched since the last evaluation (every VM at the first).
        self._before[ix] = before
        target = self.best[0][ix, here]
        ok = live & (target >= 0)
        target = np.where(ok, target, -1)
        delta = np.where(ok, self.best[1][ix, here], before) - before
        keep = (target >= 0) & (delta < 0)
        keep &= ~((self.last_to[ix] == target) & (self.last_delta[ix] == delta) & (self.last_from[ix] == s))
        if not keep.any():
            return
        rows, target, delta, here = ix[keep], target[keep], delta[keep], here[keep]
        self.last_to[rows], self.last_delta[rows], self.last_from[rows] = target, delta, site[rows]
        cost = self.move_bytes[rows] / GB * self.p_egress[here]
        totals = np.bincount(self.service, weights=self._before, minlength=int(self.service.max()) + 1)
        self._record_charges(rows, site[rows], target, self.scorer.score(dom, rows), totals[self.service[rows]],
                             delta, cost)

    def _record_charges(self, rows: np.ndarray, from_site: np.ndarray, to_site: np.ndarray, score: np.ndarray,
                        before: np.ndarray, delta: np.ndarray, cost: np.ndarray) -> None:
        """One ``charges`` row per VM of ``rows`` (the other arrays aligned with it): its proposed move
        and the service's charge per hour before (``before``) and after it (``before + delta``)."""
        vms, names = self.vms, [s.name for s in self.sites]
        rows_l = rows.tolist()
        self.ctx.recorder.record_many(
            "charges", vm=[vms[i].name for i in rows_l], service=[vms[i].service for i in rows_l],
            from_site=[names[x] for x in from_site.tolist()], to_site=[names[x] for x in to_site.tolist()],
            redundancy_possibility=score.tolist(), charge_before_per_h=before.tolist(),
            charge_after_per_h=(before + delta).tolist(), migration_cost=cost.tolist(),
            delta_per_h=delta.tolist())

    def _start(self, hosts: dict[int, Host]) -> None:
        """Migrate each VM of ``hosts`` to its host (policy cheapest)."""
        if hosts:
            engine = self.ctx.services["live_migration"]
            for i, host in hosts.items():
                proc = engine.migrate(self.vms[i], host, KEY, mechanism=KEY, scope="any")
                self.env.process(self._await(i, proc))

    # -- policy cheapest ----------------------------------------------------------------------------
    def _choose(self, rows: np.ndarray, target: np.ndarray, dom: np.ndarray) -> dict[int, Host]:
        """A host for each proposal, in order, or none: in the target site, where the VM's owner lets
        it go (``dc.rule_for``), in a broadcast domain holding (or receiving) no peer it may be
        redundant with: same service, or same shape and name stem."""
        placed = dom >= 0
        hn = self.shape * (int(self.stem.max()) + 1) + self.stem
        by_service = set(zip(dom[placed].tolist(), self.service[placed].tolist(), strict=True))
        by_shape = set(zip(dom[placed].tolist(), hn[placed].tolist(), strict=True))
        for d, svc, key in self.pending.values():
            by_service.add((d, svc))
            by_shape.add((d, key))
        placement = self.dc.placement
        out: dict[int, Host] = {}
        for i in rows:
            i = int(i)
            vm = self.vms[i]
            site = self.sites[int(target[i])]
            svc, key = int(self.service[i]), int(hn[i])
            banned = [d for d in site.domains
                      if (self.domain_index[d.name], svc) in by_service
                      or (self.domain_index[d.name], key) in by_shape]
            if len(banned) == len(site.domains):
                continue
            rule = self.dc.rule_for(vm)
            inside = placement.within(rule, site.hosts)
            allowed = placement.without(inside, domains=banned)
            host = placement.choose(vm, allowed)
            placement.release(allowed)
            placement.release(inside)
            if host is None:
                continue
            d = self.domain_index[host.domain.name]
            self.decided(vm, host, banned)
            by_service.add((d, svc))
            by_shape.add((d, key))
            self.pending[i] = (d, svc, key)
            out[i] = host
        return out

    def decided(self, vm: VM, host, banned) -> None:
        """A move of ``vm`` to ``host`` was decided (``banned``: the domains its peers hold)."""

    def _await(self, i: int, proc):
        result = yield proc
        self.pending.pop(i, None)
        if result.completed:
            self._reprice(i)


def _codes(values: list) -> np.ndarray:
    """Dense integer codes of hashable values (equal values, equal codes)."""
    seen: dict = {}
    return np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.int64, len(values))


def _group_counts(*keys: np.ndarray) -> np.ndarray:
    """For each row, how many rows share its values of ``keys`` (non-negative integer codes): the
    keys are folded into one dense code, two at a time, then counted with one bincount."""
    code = keys[0]
    for k in keys[1:]:
        code = code * (int(k.max()) + 1) + k
        code = np.unique(code, return_inverse=True)[1].reshape(-1)
    return np.bincount(code)[code]


def redundancy(service: np.ndarray, shape: np.ndarray, stem: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """Redundancy possibility of every placed VM (``dom`` >= 0; others 0): the largest, over the other
    placed VMs, of 0.4 [same service] + 0.2 [same shape] + 0.2 [same name stem] + 0.2 [in another
    broadcast domain, counted only with one of the others]. Vectorised: for each subset A of
    {service, shape, stem}, the VMs sharing A with it (group counts) and, of those, whether one is in
    another domain (count of A less count of A + domain)."""
    n = len(service)
    score = np.zeros(n)
    placed = dom >= 0
    if placed.sum() < 2:
        return score
    sig = [(service[placed], W_SERVICE), (shape[placed], W_SHAPE), (stem[placed], W_NAME)]
    d = dom[placed]
    best = np.zeros(int(placed.sum()))
    for mask in range(1, 8):
        keys = [sig[k][0] for k in range(3) if mask >> k & 1]
        w = sum(sig[k][1] for k in range(3) if mask >> k & 1)
        same = _group_counts(*keys) - 1
        apart = same - (_group_counts(*keys, d) - 1)
        cand = np.where(apart > 0, w + W_SPREAD, np.where(same > 0, w, 0.0))
        best = np.maximum(best, cand)
    score[placed] = np.round(best, 12)
    return score


class Scorer:
    """``redundancy(service, shape, stem, dom)`` at chosen rows, kept up to date instead of recomputed.

    For each of the 7 subsets of {service, shape, stem}, each VM's group (VMs equal on the subset) is
    fixed once. Per group the scorer keeps, over the placed VMs (``dom`` >= 0), their number and the
    sums of their domains and of the squares of their domains (integers, exact). Another VM of a
    VM's group is in another domain exactly when the group's placed VMs do not all share one domain,
    which is when the variance of their domains is not 0: with c placed VMs, a sum S and a sum of
    squares Q, when S is not a multiple of c, or Q != c (S / c)^2. A call compares ``dom`` with the
    placement it last saw and updates the sums for the VMs that changed domain (``np.add.at``, O(VMs
    moved) after one O(VMs) comparison), then reads the rows' groups: the same figures as a full
    recount (``redundancy``) at a fraction of its cost (a daily evaluation of 100,000 VMs moves a few
    hundred)."""

    def __init__(self, service: np.ndarray, shape: np.ndarray, stem: np.ndarray):
        sig = [(service, W_SERVICE), (shape, W_SHAPE), (stem, W_NAME)]
        self.n = len(service)
        codes, weights, groups = [], [], 0
        for mask in range(1, 8):
            keys = [sig[k][0] for k in range(3) if mask >> k & 1]
            w = sum(sig[k][1] for k in range(3) if mask >> k & 1)
            code = keys[0]
            for k in keys[1:]:
                code = code * (int(k.max()) + 1) + k
            code = np.unique(code, return_inverse=True)[1].reshape(-1) if self.n else np.asarray(code, np.int64)
            codes.append(code + groups)  # the 7 subsets' groups numbered one after the other
            weights.append(w)
            groups += int(code.max()) + 1 if self.n else 0
        self.code = np.stack(codes, axis=1) if self.n else np.zeros((0, 7), np.int64)  # (VMs, 7)
        self.weight = np.array(weights)
        # per group: placed VMs, sum of their domains, sum of the squares of their domains
        self.count = np.zeros(groups, np.int64)
        self.s1 = np.zeros(groups, np.int64)
        self.s2 = np.zeros(groups, np.int64)
        self.dom = np.full(self.n, -1, dtype=np.int64)  # the placement the sums describe
        self.placed = 0

    def _follow(self, dom: np.ndarray) -> None:
        """Bring the sums to ``dom``: VMs whose domain changed leave their old one and join the new."""
        dom = np.asarray(dom, dtype=np.int64)
        moved = np.flatnonzero(dom != self.dom)
        if not len(moved):
            return
        old, new = self.dom[moved], dom[moved]
        out, into = old >= 0, new >= 0
        d = np.concatenate([old[out], new[into]])
        sign = np.concatenate([np.full(int(out.sum()), -1, np.int64), np.ones(int(into.sum()), np.int64)])
        g = self.code[np.concatenate([moved[out], moved[into]])]  # (changes, 7)
        sign7 = np.repeat(sign, 7)
        d7 = np.repeat(d, 7)
        g = g.reshape(-1)
        np.add.at(self.count, g, sign7)
        np.add.at(self.s1, g, sign7 * d7)
        np.add.at(self.s2, g, sign7 * d7 * d7)
        self.placed += int(sign.sum())
        self.dom[moved] = new

    def score(self, dom: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The redundancy possibility of the VMs ``rows`` (0 for one not placed, ``dom`` -1)."""
        self._follow(dom)
        rows = np.asarray(rows, dtype=np.int64)
        if self.placed < 2 or not len(rows):
            return np.zeros(len(rows))
        g = self.code[rows]  # (rows, 7)
        c = self.count[g]
        s, q = self.s1[g], self.s2[g]
        c1 = np.maximum(c, 1)
        a = s // c1
        apart = (s != a * c1) | (q != c1 * a * a)  # not all in one domain (variance not 0)
        w = self.weight
        best = np.where(apart, w + W_SPREAD, np.where(c > 1, w, 0.0)).max(axis=1)
        return np.where(self.dom[rows] >= 0, np.round(best, 12), 0.0)


def best_moves(rate: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``to[i, s]``: VM i's cheapest allowed site other than s (the first of equal ones; -1 if none) and
    ``after[i, s]`` its rate there (inf if none), for every site s it may be at."""
    n, s = rate.shape
    masked = np.where(allowed, rate, np.inf)
    to = np.full((n, s), -1, dtype=np.int64)
    after = np.full((n, s), np.inf)
    rows = np.arange(n)
    for here in range(s):
        m = masked.copy()
        m[:, here] = np.inf
        t = np.argmin(m, axis=1) if s else np.zeros(n, dtype=np.int64)
        a = m[rows, t]
        ok = np.isfinite(a)
        to[:, here] = np.where(ok, t, -1)
        after[:, here] = a
    return to, after


def evaluate_moves(rate: np.ndarray, p_egress: np.ndarray, move_bytes: np.ndarray, service: np.ndarray,
                   site: np.ndarray, running: np.ndarray, allowed: np.ndarray,
                   best: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """For every VM: the cheapest other allowed site (``target``, -1 if none or not running), its
    charge per hour where it is (``before``) and there (``after``), the egress cost of the move and its
    service's charge per hour now (every running VM of the service). ``best``: ``best_moves(rate,
    allowed)`` when already known (then the evaluation is a few gathers, O(VMs))."""
    n, s = rate.shape
    live = running & (site >= 0)
    rows = np.arange(n)
    here = np.where(live, site, 0)
    before = np.where(live, rate[rows, here], 0.0)
    to, best_after = best if best is not None else best_moves(rate, allowed)
    target = to[rows, here]
    after = best_after[rows, here]
    ok = live & (target >= 0)
    target = np.where(ok, target, -1)
    after = np.where(ok, after, before)
    cost = np.where(ok, move_bytes / GB * p_egress[here], 0.0)
    totals = np.bincount(service, weights=before, minlength=int(service.max()) + 1 if n else 0)
    return {"target": target, "before": before, "after": after, "cost": cost,
            "service_before": totals[service] if n else before}
