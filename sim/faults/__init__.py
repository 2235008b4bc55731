"""Faults: the only place failures are decided (scheduled and stochastic injectors), and the
default recovery that restarts stopped VMs when no mechanism saves them."""
