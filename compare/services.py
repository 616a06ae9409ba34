"""The objects a command or the app needs, built lazily from one Settings: embedder, store, ingestor."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from compare.analysis.engine import Engine
from compare.embedding import Embedder, get_embedder
from compare.ingest.pipeline import Ingestor, ProgressCallback
from compare.ingest.readers import ReadOptions
from compare.settings import Settings
from compare.store import Filters, Store
from compare.types import IngestReport, SearchHit


class Services:
    """Loads models and opens the store once per process, only when a command needs them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings)

    @cached_property
    def store(self) -> Store:
        """The store, checked against the configured embedder (refuses to mix embedders)."""
        return Store(self.settings, embedder_name=self.embedder.name, dim=self.embedder.dim)

    @cached_property
    def reader_store(self) -> Store:
        """The store opened for reading only: no model is loaded."""
        if "store" in self.__dict__:
            return self.store
        return Store(self.settings)

    @cached_property
    def engine(self) -> Engine:
        """Question -> Comparison, with the embedder, store and backends kept warm."""
        return Engine(self.settings, self.store, self.embedder)

    def ingest(
        self, inputs: Sequence[str], options: ReadOptions, on_item: ProgressCallback | None = None
    ) -> IngestReport:
        return Ingestor(self.settings, self.store, self.embedder).run(inputs, options, on_item)

    def search(self, text: str, *, k: int = 8, filters: Filters | None = None) -> list[SearchHit]:
        vector = self.embedder.embed([text])[0]
        return self.store.search(vector, k=k, filters=filters)
