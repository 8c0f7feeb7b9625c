"""``python benchmarks/execution.py``: the same as ``tranche bench execution``.

The execution service's batch endpoint: the original's path vs the bulk path vs the raw
database floor, over HTTP and in-process, and under concurrent clients; see
``tranche.bench.execution``.
"""

from tranche.bench.execution import main

if __name__ == "__main__":
    main()
