"""Sources: the outside world turned into observations (see ``watchdog.model``)."""
