""":data:`JsonNumber`: a decimal on the wire as an exact JSON number, documented so.

pydantic documents ``Decimal`` as a string (its default JSON output), but the services
render decimals as exact numbers (``100.50000000``, see each service's ``dumps``); a
client generated from a string schema would reject every answer. Kept apart from
:mod:`tranche.core.openapi` so the wire models need no web framework.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import WithJsonSchema

__all__ = ["JsonNumber"]

#: A decimal written as an exact JSON number (``100.50000000``), never a string.
JsonNumber = Annotated[Decimal, WithJsonSchema({"type": "number"})]
