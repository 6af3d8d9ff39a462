"""Sinks: where the diagnosis goes (status file, stderr alerts, human text)."""
