"""Mechanisms: one module per resilience mechanism (plus the live migration engine).

Each module defines ``KEY``, a pydantic ``Config`` (with ``enabled``) and a
``Mechanism`` class; ``registry.py`` lists them explicitly. Mechanisms never
import each other: they offer capabilities through ``ctx.services``.
"""
