"""The bundle's entry point: the same as ``python -m watchdog``."""
from watchdog.cli import main

raise SystemExit(main())
