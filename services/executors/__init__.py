"""Executors: what runs a job's task (``CAUCHY_EXECUTOR``): ``local`` processes (the default) or a ``ray``
cluster (``CAUCHY_RAY_ADDRESS``). The supervisor talks to one through ``base.Executor``; ``registry`` builds
the chosen one; ``node_run`` is what runs on a Ray node (docs/executors.md). Kept empty: ``node_run`` starts
on the nodes without the service's imports."""
