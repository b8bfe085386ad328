"""Programs around the library, each run with ``python -m helpers.tools.<name>``.

- ``worker``: one :class:`helpers.Worker` as a process (what you deploy).
- ``bench``: Producer and Worker against raw redis-py loops, ratios from one run.
- ``cluster_bench``: a partitioned queue on one shard vs three.
- ``crash_demo``: a consumer that takes work and never acknowledges it, to be killed.
- ``demo_handlers``: handlers for worker processes in lessons and tests.
"""
