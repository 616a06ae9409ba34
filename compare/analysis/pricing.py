"""What a run costs: a dated table of USD per 1M tokens, overridable by a YAML/JSON file.

The built-in table is OpenAI's standard-tier list price for text tokens as written on PRICES_AS_OF; prices
change, so every cost is an estimate tied to that date (and `ncompare config` shows which table is in use).
A user file (settings.llm.price_table) adds or replaces entries:

    as_of: "2025-10-01"          # optional, shown with costs
    models:
      gpt-4o-mini: {input: 0.15, output: 0.60}
      my-local-model: {input: 0, output: 0}

(a flat mapping of model -> {input, output} is accepted too). A model without a price costs 0 with a warning
saying so, never a guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compare.errors import ConfigError

PRICES_AS_OF = "2025-08-20"
PRICE_SOURCE = "https://openai.com/api/pricing (standard tier, text tokens, USD per 1M tokens)"


@dataclass(frozen=True)
class Price:
    """USD per one million tokens."""

    input: float
    output: float


BUILTIN_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "o1": Price(15.00, 60.00),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
}


@dataclass(frozen=True)
class Cost:
    usd: float
    known: bool
    warning: str | None = None


@dataclass(frozen=True)
class PriceTable:
    prices: dict[str, Price]
    as_of: str
    origin: str

    def lookup(self, model: str) -> Price | None:
        """Exact name, else the longest entry that the name extends at a '-' (dated snapshots: gpt-4o-2024-08-06)."""
        name = model.strip().lower().removeprefix("openai/")
        if name in self.prices:
            return self.prices[name]
        prefixes = [key for key in self.prices if name.startswith(key + "-")]
        return self.prices[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> Cost:
        price = self.lookup(model)
        if price is None:
            return Cost(
                0.0,
                False,
                f"no price known for model {model!r}: cost shown as 0 "
                "(add it to a price table file, NCOMPARE_LLM__PRICE_TABLE)",
            )
        usd = (tokens_in * price.input + tokens_out * price.output) / 1_000_000
        return Cost(round(usd, 6), True)


def builtin_price_table() -> PriceTable:
    return PriceTable(dict(BUILTIN_PRICES), PRICES_AS_OF, PRICE_SOURCE)


def load_price_table(path: Path | None) -> PriceTable:
    """The built-in table, with the entries of `path` (YAML or JSON) added or replacing built-in ones."""
    table = builtin_price_table()
    if path is None:
        return table
    data = _read(path)
    models = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(f"{path}: a price table maps model names to {{input, output}}", hint=_FORMAT_HINT)
    user = {
        str(name).lower(): _price(path, str(name), entry) for name, entry in models.items() if name != "as_of"
    }
    as_of = str(data.get("as_of") or "unknown date") if isinstance(data, dict) else "unknown date"
    return PriceTable({**table.prices, **user}, f"{as_of} ({path}); built-in {PRICES_AS_OF}", str(path))


_FORMAT_HINT = "e.g. models: {gpt-4o-mini: {input: 0.15, output: 0.60}} (USD per 1M tokens)"


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the price table ({error})", hint=_FORMAT_HINT) from error


def _price(path: Path, name: str, entry: Any) -> Price:
    try:
        price = Price(input=float(entry["input"]), output=float(entry["output"]))
    except (TypeError, KeyError, ValueError) as error:
        raise ConfigError(f"{path}: bad price for {name!r}: {entry!r}", hint=_FORMAT_HINT) from error
    if price.input < 0 or price.output < 0:
        raise ConfigError(f"{path}: negative price for {name!r}", hint=_FORMAT_HINT)
    return price
