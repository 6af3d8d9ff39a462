"""Read a supervisord.conf with supervisord's own parser and print what it makes of it, as JSON.

Run by tests/bundle/test_deploy.py under supervisor 3.3.1 on Python 2.7 and under supervisor 4
on Python 3, so it keeps to the language both share. Usage: python supervisor_config_dump.py CONF
"""
import json
import sys

from supervisor.options import VERSION, ServerOptions


def main(conf):
    options = ServerOptions()
    options.realize(args=["-c", conf])
    groups = {}
    for group in options.process_group_configs:
        procs = {}
        for p in group.process_configs:
            procs[p.name] = {
                "command": p.command,
                "autostart": bool(p.autostart),
                "stdout_events_enabled": bool(p.stdout_events_enabled),
                "stdout_logfile": p.stdout_logfile,
                "redirect_stderr": bool(p.redirect_stderr),
                "priority": p.priority,
            }
        events = sorted(e.__name__ for e in getattr(group, "pool_events", []))
        groups[group.name] = {
            "kind": type(group).__name__,
            "events": events,
            "buffer_size": getattr(group, "buffer_size", None),
            "processes": procs,
        }
    sys.stdout.write(json.dumps({"version": VERSION, "groups": groups}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
