"""The monitor's concerns, one watcher each (see ``base.Watcher`` for the hooks).

| concern | watcher | scopes it owns |
| --- | --- | --- |
| supervisord programs: states, failures, flapping, resync | ``processes.ProcessesWatcher`` | ``process:*``, ``logs:*`` |
| the init program's output (image loading) | ``init_output.InitOutputWatcher`` | ``init`` |
| the k3s API and the ``rbd-system`` pods | ``region.RegionWatcher`` | ``region:api``, ``region:pods`` |
| disk, memory, CPUs, privileges, storage | ``host.HostWatcher`` | ``host`` |
| the console's HTTP port | ``console.ConsoleWatcher`` | ``console`` |
| boot phases: timeline, deadlines, restart storms | ``boot.BootWatcher`` | ``phase`` |

Watchers never import each other: what one learns for the others goes on the ``Board``.
"""
