"""Infrastructure: the passive datacenter model, the network topology and its bandwidth solver."""
