"""Eval datasets (cases with inputs and expected values) and suites (datasets x prompts x backends), from YAML.

A dataset file is a list of cases, or a mapping with `cases` (and optional `description`). A suite file is a
mapping with `datasets` (paths relative to the suite file, or {path, cases: [names]}), `prompts`
(name@version), `backends` and `thresholds` ({metric: value}). Every key is checked: an unknown one is an
error that names the file, the case and the key.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from compare.errors import ConfigError
from compare.types import POSITION_OF_STANCE, PositionLabel, StanceLabel

STANCE_LABELS: tuple[str, ...] = get_args(StanceLabel)
#: Short labels some corpora use (BASIL: pos/neu/neg), accepted in datasets and stored as the long ones.
STANCE_ALIASES = {"pos": "positive", "neg": "negative", "neu": "neutral"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _iso_date(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date YYYY-MM-DD") from exc
    return str(value)


class CaseFilters(_Strict):
    sources: list[str] = Field(default_factory=list, description="Only these sources.")
    since: str | None = Field(default=None, description="Only documents dated on/after YYYY-MM-DD.")
    until: str | None = Field(default=None, description="Only documents dated on/before YYYY-MM-DD.")
    where: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Metadata equality filters, e.g. {event_id: X}."
    )

    _dates = field_validator("since", "until", mode="before")(_iso_date)


class CaseInputs(_Strict):
    question: str = Field(min_length=1, description="The question asked of the tool.")
    target: str | None = Field(
        default=None, description="What stances are measured toward (default: derived)."
    )
    k: int | None = Field(default=None, ge=1, le=50, description="Chunks retrieved per source.")
    corpus: str | None = Field(default=None, description="JSONL of articles, relative to the dataset file.")
    documents: list[dict[str, Any]] | None = Field(
        default=None, description="Inline articles in the JSONL schema (id, source, date, text, ...)."
    )
    filters: CaseFilters = Field(default_factory=CaseFilters)

    @model_validator(mode="after")
    def _one_corpus(self) -> CaseInputs:
        if (self.corpus is None) == (self.documents is None):
            raise ValueError("give exactly one of `corpus` (a JSONL path) or `documents` (inline articles)")
        if self.documents is not None and not self.documents:
            raise ValueError("`documents` is empty")
        return self


class ExpectedQuote(_Strict):
    doc_id: str
    text: str = Field(min_length=1)


class ExpectedShift(_Strict):
    source: str
    before_date: str | None = Field(default=None, description="Date of the earlier position; null: any.")
    after_date: str | None = Field(default=None, description="Date of the later position; null: any.")
    before_text: str | None = Field(default=None, description="Words the earlier quote should carry.")
    after_text: str | None = Field(default=None, description="Words the later quote should carry.")
    tolerance_days: int = Field(default=0, ge=0, description="Allowed distance between dates, in days.")

    _dates = field_validator("before_date", "after_date", mode="before")(_iso_date)


class ExpectedPosition(_Strict):
    """One document's position toward the question's target (claim-stance labels are accepted: agree ->
    backs, disagree -> disputes, discuss -> reports, unrelated -> not_addressed)."""

    source: str
    doc_id: str
    position: PositionLabel
    date: str | None = Field(default=None, description="The document's date: orders a shifting source's.")

    _dates = field_validator("date", mode="before")(_iso_date)

    @field_validator("position", mode="before")
    @classmethod
    def _stance_labels(cls, value: Any) -> Any:
        return POSITION_OF_STANCE.get(str(value).lower(), value) if isinstance(value, str) else value


SourcePair = tuple[str, str]


def _distinct_pairs(value: list[SourcePair] | None) -> list[SourcePair] | None:
    for first, second in value or []:
        if first == second:
            raise ValueError(f"a pair needs two different sources, not [{first}, {second}]")
    return value


class Expected(_Strict):
    sources: list[str] = Field(default_factory=list)
    stances: dict[str, StanceLabel] = Field(default_factory=dict)
    quotes_should_overlap: list[ExpectedQuote] = Field(default_factory=list)
    shifts: list[ExpectedShift] = Field(default_factory=list)
    reference_summary: str | None = None
    # Judgements toward the target. For the lists below, null (absent) means "not measured" and [] means
    # "measured: none expected", so that a predicted difference, agreement, shift or omission still counts
    # against precision in a case that expects none.
    positions: list[ExpectedPosition] = Field(default_factory=list)
    differences: list[SourcePair] | None = Field(
        default=None,
        description="Unordered source pairs where one backs the target and the other disputes it.",
    )
    agreements: list[SourcePair] | None = Field(
        default=None, description="Unordered source pairs that both back the target."
    )
    shifting: list[str] | None = Field(
        default=None, description="Sources whose position on the target changes between their documents."
    )
    steady: list[str] | None = Field(
        default=None, description="Sources with two or more documents that keep one position."
    )
    not_addressed: list[str] | None = Field(
        default=None, description="Sources whose documents do not address the target (omissions)."
    )

    _pairs = field_validator("differences", "agreements")(_distinct_pairs)

    @field_validator("stances", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: STANCE_ALIASES.get(str(v).lower(), v) for k, v in value.items()}
        return value


class Case(_Strict):
    name: str = Field(min_length=1)
    inputs: CaseInputs
    expected: Expected = Field(default_factory=Expected)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Dataset(BaseModel):
    name: str
    path: Path
    description: str = ""
    cases: list[Case]

    def corpus_path(self, case: Case) -> Path | None:
        return (self.path.parent / case.inputs.corpus).resolve() if case.inputs.corpus else None


class SuiteDataset(_Strict):
    path: str
    cases: list[str] | None = Field(default=None, description="Only these cases of the dataset.")


class SuiteFile(_Strict):
    description: str = ""
    datasets: list[str | SuiteDataset] = Field(min_length=1)
    prompts: list[str] = Field(default_factory=list)
    backends: list[str] = Field(default_factory=lambda: ["offline"])
    thresholds: dict[str, float] = Field(default_factory=dict)


class Suite(BaseModel):
    name: str
    path: Path | None
    description: str = ""
    datasets: list[Dataset]
    prompts: list[str]
    backends: list[str]
    thresholds: dict[str, float]


# -- loading -------------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such file", hint="give a suite or dataset YAML, e.g. eval/suites/smoke.yaml"
        )
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})", hint="fix the syntax at the line shown") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text", hint="save the file as UTF-8") from exc


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    if error["type"] == "missing":
        return f"missing key {where!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _case_problems(path: Path, index: int, raw: Any) -> tuple[Case | None, list[str]]:
    label = f"case #{index + 1}"
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        label = f"case {raw['name']!r}"
    if not isinstance(raw, dict):
        return None, [f"{path}: {label}: a case must be a mapping with name, inputs, expected, metadata"]
    try:
        return Case.model_validate(raw), []
    except ValidationError as exc:
        return None, [f"{path}: {label}: {_describe(e)}" for e in exc.errors()]


def load_dataset(path: Path) -> Dataset:
    """Every case validated; all problems reported at once, each naming the file, the case and the key."""
    path = path.resolve()
    data = _read_yaml(path)
    description = name = ""
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"cases", "description", "name"})
        if unknown:
            raise ConfigError(
                f"{path}: unknown top-level key(s) {', '.join(map(repr, unknown))}",
                hint="a dataset is a list of cases, or a mapping with `cases` and an optional `description`",
            )
        description = str(data.get("description") or "")
        name = str(data.get("name") or "")
        data = data.get("cases")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: no cases", hint="list cases, each with name, inputs, expected, metadata")
    cases, problems = [], []
    for index, raw in enumerate(data):
        case, found = _case_problems(path, index, raw)
        problems += found
        if case is not None:
            cases.append(case)
    problems += _name_problems(path, cases)
    dataset = Dataset(name=name or path.stem, path=path, description=description, cases=cases)
    problems += _corpus_problems(dataset)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise ConfigError("invalid dataset:\n  " + "\n  ".join(shown), hint=_DATASET_HINT)
    return dataset


_DATASET_HINT = (
    "case keys: name, inputs{question, target, k, corpus | documents, filters{sources, since, until, where}}, "
    "expected{sources, stances, quotes_should_overlap[{doc_id, text}], shifts[{source, before_date, "
    "after_date, before_text, after_text, tolerance_days}], reference_summary, positions[{source, doc_id, "
    "position, date}], differences[[a, b]], agreements[[a, b]], shifting, steady, not_addressed}, metadata; "
    "see eval/README.md"
)


def _name_problems(path: Path, cases: list[Case]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for case in cases:
        if case.name in seen:
            problems.append(f"{path}: case {case.name!r}: the name is used twice")
        seen.add(case.name)
    return problems


def _corpus_problems(dataset: Dataset) -> list[str]:
    problems = []
    for case in dataset.cases:
        corpus = dataset.corpus_path(case)
        if corpus is not None and not corpus.is_file():
            problems.append(
                f"{dataset.path}: case {case.name!r}: corpus {case.inputs.corpus!r} not found ({corpus})"
            )
        for number, doc in enumerate(case.inputs.documents or [], 1):
            if not isinstance(doc.get("text"), str) or not doc.get("source"):
                problems.append(
                    f"{dataset.path}: case {case.name!r}: document #{number} needs `source` and `text`"
                )
    return problems


def load_suite(path: Path) -> Suite:
    path = path.resolve()
    data = _read_yaml(path)
    try:
        raw = SuiteFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{path}: {_describe(e)}" for e in exc.errors()]
        raise ConfigError(
            "invalid suite:\n  " + "\n  ".join(problems),
            hint="suite keys: description, datasets, prompts, backends, thresholds; see eval/README.md",
        ) from exc
    datasets = [_suite_dataset(path, entry) for entry in raw.datasets]
    from compare.evaluation.report import check_threshold_names

    check_threshold_names(raw.thresholds, str(path))
    return Suite(
        name=path.stem,
        path=path,
        description=raw.description,
        datasets=datasets,
        prompts=raw.prompts,
        backends=raw.backends,
        thresholds=raw.thresholds,
    )


def _suite_dataset(suite_path: Path, entry: str | SuiteDataset) -> Dataset:
    spec = entry if isinstance(entry, SuiteDataset) else SuiteDataset(path=entry)
    dataset = load_dataset(suite_path.parent / spec.path)
    if spec.cases is None:
        return dataset
    known = {case.name for case in dataset.cases}
    missing = [name for name in spec.cases if name not in known]
    if missing:
        raise ConfigError(
            f"{suite_path}: dataset {spec.path}: no case(s) {', '.join(map(repr, missing))}",
            hint=f"known cases: {', '.join(sorted(known))}",
        )
    return dataset.model_copy(update={"cases": [c for c in dataset.cases if c.name in spec.cases]})


def is_suite(data: Any) -> bool:
    return isinstance(data, dict) and "datasets" in data


def resolve_target(target: str) -> Path:
    """A path, or a bare name looked up as eval/suites/NAME.yaml, then eval/datasets/NAME.yaml."""
    path = Path(target)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in target:
        return path
    for folder in ("eval/suites", "eval/datasets"):
        candidate = Path(folder) / f"{target}.yaml"
        if candidate.is_file():
            return candidate
    return path


def load_target(target: str) -> Suite:
    """A suite file as it is; a dataset file as a one-dataset suite with no prompts, backends or thresholds."""
    path = resolve_target(target)
    if is_suite(_read_yaml(path)):
        return load_suite(path)
    dataset = load_dataset(path)
    return Suite(
        name=dataset.name,
        path=None,
        description=dataset.description,
        datasets=[dataset],
        prompts=[],
        backends=[],
        thresholds={},
    )


def suite_relative(suite: Suite, spec: str) -> str:
    """A `replay:` backend's cassette path resolved against the suite file's folder."""
    prefix, _, rest = spec.partition(":")
    if prefix != "replay" or suite.path is None or Path(rest).is_absolute():
        return spec
    return f"replay:{(suite.path.parent / rest).resolve()}"
