"""Embedders: one small interface, an offline default, and an OpenAI option. Chosen by a name string.

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from compare.settings import Settings


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors. `name` and `dim` are recorded in the store."""

    name: str
    dim: int
    #: Longest input in the model's own tokens (without special tokens); None if unlimited/unknown.
    max_tokens: int | None = None

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised, same order as `texts`."""

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        """Model tokens per text (no special tokens), or None when the model's tokenizer is not local."""
        return None


def get_embedder(settings: Settings) -> Embedder:
    raise NotImplementedError
