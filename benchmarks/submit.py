"""``python benchmarks/submit.py [options]``: the same as ``tranche bench submit``.

Bulk against one-by-one submission of executions to the real execution service on
PostgreSQL; see ``tranche.bench.submit`` for what is measured.
"""

from tranche.bench.submit import main

if __name__ == "__main__":
    main()
