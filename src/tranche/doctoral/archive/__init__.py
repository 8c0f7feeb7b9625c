"""archiveJob's parts: keys, archive format, candidates, writer, cleanup, maintenance."""

__all__: list[str] = []
