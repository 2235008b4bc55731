"""Experiments over scenarios: sweeps (grid and sampled designs, replications on common random
numbers), A/B comparisons on paired seeds, and their execution on local processes or Dask.

- ``design``   reads and checks a sweep file and expands it into points and runs (no model import).
- ``execute``  runs a list of runs on local worker processes or a Dask cluster, writes the sweep folder.
- ``stats``    Student-t summaries of a sweep's runs (points.parquet) and paired differences (compare).
- ``compare``  ``dcsim compare``: A = the scenario, B = the scenario with ``--set`` overrides.
"""
