"""``python benchmarks/execution_insert.py``: the same as ``tranche bench execution-insert``.

Insert methods of the execution service's bulk path (row, multi-row VALUES, unnest,
COPY, the driver floor) and the batch endpoint end to end; see
``tranche.bench.execution_insert``.
"""

from tranche.bench.execution_insert import main

if __name__ == "__main__":
    main()
