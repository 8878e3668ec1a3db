"""Record sources behind one interface (base.RecordSourceReader); `open_source` picks one per cluster."""

from __future__ import annotations

from processes.importer.sources.base import RecordSourceReader, SourceConfigError, open_source

__all__ = ["RecordSourceReader", "SourceConfigError", "open_source"]
