"""dcsim: a discrete-event datacenter resilience simulator on SimPy."""

__version__ = "0.1.0"
