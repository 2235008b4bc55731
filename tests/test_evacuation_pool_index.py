"""The evacuation pool is read from a per-list index of hosts by domain and site; reference: the
brute-force scan of the whole list with the engine's ``in_scope`` (what the pool was before), for
every host of a 300-host fleet, each scope, over a host list and a list of names, same order."""

import pytest

from sim.bench import load_fleet
from sim.runner import Simulation


@pytest.mark.parametrize("scope", ["broadcast_domain", "site", "any"])
def test_scoped_pool_equals_the_full_scan(scope):
    sim = Simulation(load_fleet(None, 300, "1d"))
    mech = next(m for m in sim.mechanisms if m.key == "memory_error_evacuation")
    engine = mech.engine
    hosts = sim.dc.host_list
    names = [h.name for h in reversed(hosts) if h.site.name == "east"]  # a cluster-like list, its own order
    for lst in (hosts, names):
        every = [sim.dc.hosts[h] if isinstance(h, str) else h for h in lst]
        for host in hosts[::7]:
            brute = [h for h in every if engine.in_scope(host, h, scope)]
            fast = mech._scoped(lst, host, scope)  # exactly the scan: no host outside the scope either
            assert fast == brute
            assert brute or host not in every  # a host of the list has at least itself
