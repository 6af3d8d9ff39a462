"""rainbond-watchdog: a supervisord eventlistener that diagnoses the Rainbond allinone container.

Not the PyPI library called ``watchdog`` (file-system events); this project never depends on it.
"""

__version__ = "0.1.0"
