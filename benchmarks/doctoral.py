"""``python benchmarks/doctoral.py [options]``: the same as ``tranche bench doctoral``.

Both doctoral jobs at volume on scratch MariaDB databases, beside the bare SQL
floor; see ``tranche.bench.doctoral``.
"""

from tranche.bench.doctoral import main

if __name__ == "__main__":
    main()
