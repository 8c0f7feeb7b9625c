"""The admin web console at ``/console``: static files (vanilla JS modules) and their router."""

__all__: list[str] = []
