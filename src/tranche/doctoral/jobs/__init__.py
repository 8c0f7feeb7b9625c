"""The doctoral jobs, one module each (reader, processor, writer, job definition)."""

__all__: list[str] = []  # nothing re-exported: the public API is the submodules
