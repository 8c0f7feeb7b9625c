"""The doctoral jobs, one module each (reader, processor, writer, job definition)."""
