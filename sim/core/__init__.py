"""Core: run context, units, random streams, typed causes and errors."""
