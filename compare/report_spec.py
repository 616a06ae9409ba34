"""The report spec: one YAML file saying what a batch report compares, validated before any work is done.

```yaml
title: How US official framing of Ukraine support changed, 2022-23
corpus: {sources: [whitehouse], since: 2022-02-01, until: 2023-12-31, where: {storyline: X}}
group_by: event_id                      # one question per distinct value ...
question_template: "How did {source_list} describe {label}?"
target: US support for Ukraine          # what stances are measured toward (optional, may use the fields too)
# ... or instead of group_by: questions: ["How did ...?", {question: ..., target: ..., where: {k: v}}]
backend: offline                        # or openai:MODEL, openai-compatible:MODEL@URL
prompt: compare@1
top_k: 8
timeline: [{source: whitehouse, topic: US military aid to Ukraine}]
```

Every error names the file, the field (`corpus.since`, `questions[2].question`) and, when it can, the line.
"""

from __future__ import annotations

import json
import string
import types
import typing
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from compare.errors import ConfigError
from compare.store import Filters

MetadataScalar = str | int | float | bool
#: Template fields every group has (besides the metadata its documents share); see `group_fields`.
GROUP_FIELDS = (
    "value",
    "group_by",
    "label",
    "title",
    "source_list",
    "sources",
    "documents",
    "first_date",
    "last_date",
    "date_range",
)
BACKEND_PREFIXES = ("offline", "openai", "openai-compatible")


class CorpusSpec(BaseModel):
    """Which documents the report reads: the same filters as `ncompare search`."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=list, description="Only these sources (empty: all).")
    since: date | None = Field(default=None, description="Only documents dated on/after this day.")
    until: date | None = Field(default=None, description="Only documents dated on/before this day.")
    where: dict[str, MetadataScalar] = Field(
        default_factory=dict, description="Metadata equality filters, e.g. {storyline: X}."
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> CorpusSpec:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self

    def filters(self) -> Filters:
        return Filters(
            sources=list(self.sources),
            since=self.since.isoformat() if self.since else None,
            until=self.until.isoformat() if self.until else None,
            where={key: _where_text(value) for key, value in self.where.items()} or None,
        )

    def narrowed(self, other: CorpusSpec) -> CorpusSpec:
        """These filters and `other`'s: its sources replace ours, dates intersect, where clauses add up."""
        since = max((d for d in (self.since, other.since) if d), default=None)
        until = min((d for d in (self.until, other.until) if d), default=None)
        return CorpusSpec.model_construct(
            sources=list(other.sources or self.sources),
            since=since,
            until=until,
            where={**self.where, **other.where},
        )


def _where_text(value: MetadataScalar) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class QuestionSpec(BaseModel):
    """One question; its own filters narrow the corpus filters."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, description="The question, as you would ask `ncompare ask`.")
    target: str | None = Field(default=None, description="What stances are measured toward.")
    sources: list[str] = Field(default_factory=list, description="Only these sources for this question.")
    since: date | None = None
    until: date | None = None
    where: dict[str, MetadataScalar] = Field(default_factory=dict)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is blank")
        return value.strip()

    def corpus(self) -> CorpusSpec:
        return CorpusSpec.model_construct(
            sources=self.sources, since=self.since, until=self.until, where=self.where
        )


class TimelineSpec(BaseModel):
    """Follow one source across the whole date range of the corpus, on one topic."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, description="The source to follow, e.g. whitehouse.")
    topic: str = Field(min_length=1, description="What to follow; also the stance target.")
    question: str | None = Field(default=None, description="Retrieval question (default: the topic).")
    k: int | None = Field(
        default=None, ge=1, le=50, description="Chunks retrieved (default: 3 x top_k, at most 50)."
    )


class ReportSpec(BaseModel):
    """A batch report: filters, then either fixed questions or one question per metadata group."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, description="Report title.")
    description: str = Field(default="", description="A paragraph shown under the title.")
    corpus: CorpusSpec = Field(default_factory=CorpusSpec, description="Corpus filters for every question.")
    questions: list[QuestionSpec] | None = Field(default=None, description="Fixed questions.")
    group_by: str | None = Field(default=None, description="Metadata field: one question per value.")
    question_template: str | None = Field(
        default=None, description="With group_by: the question, using {fields} of the group."
    )
    target: str | None = Field(
        default=None, description="Stance target for every question (a template with group_by)."
    )
    groups: list[str] | None = Field(
        default=None, description="With group_by: only these values, in this order (default: all, by date)."
    )
    group_info: str | None = Field(
        default=None,
        description="With group_by: a JSONL/JSON/YAML file of records keyed by the group_by field whose other "
        "fields become template fields (e.g. label). Relative to the spec file.",
    )
    backend: str | None = Field(
        default=None, description="offline, openai:MODEL, openai-compatible:MODEL@URL."
    )
    prompt: str | None = Field(default=None, description="Prompt name@version for LLM backends.")
    top_k: int | None = Field(default=None, ge=1, le=50, description="Chunks retrieved per source.")
    timeline: list[TimelineSpec] = Field(default_factory=list, description="Sections following one source.")

    @field_validator("questions", mode="before")
    @classmethod
    def _plain_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"question": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and value.strip().partition(":")[0] not in BACKEND_PREFIXES:
            raise ValueError("must be offline, openai:MODEL or openai-compatible:MODEL@http://host:port/v1")
        return value.strip() if value else value

    @field_validator("question_template", "target")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        if value is not None:
            template_fields(value)
        return value

    @model_validator(mode="after")
    def _one_way_to_ask(self) -> ReportSpec:
        if self.questions is not None and self.group_by is not None:
            raise ValueError("give either `questions` or `group_by` (with `question_template`), not both")
        if self.group_by is not None and not self.question_template:
            raise ValueError(
                "`group_by` needs a `question_template`, e.g. 'How did {source_list} describe {label}?'"
            )
        if self.question_template is not None and self.group_by is None:
            raise ValueError("`question_template` needs `group_by` (the metadata field to group on)")
        for name in ("groups", "group_info"):
            if getattr(self, name) is not None and self.group_by is None:
                raise ValueError(f"`{name}` needs `group_by`")
        if self.questions is not None and not self.questions:
            raise ValueError("`questions` is empty")
        if self.questions is None and self.group_by is None and not self.timeline:
            raise ValueError(
                "nothing to ask: give `questions`, or `group_by` + `question_template`, or `timeline`"
            )
        if self.questions is None and self.target and template_fields(self.target):
            raise ValueError("`target` uses {fields}, which only `group_by` reports fill in")
        return self


def template_fields(template: str) -> list[str]:
    """The {field} names a template uses; only plain names (no attribute or index access, no format spec)."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}); write literal braces as {{{{ and }}}}") from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"{{{name}}} is not a plain field name; use e.g. {{label}} or {{source_list}}")
        names.append(name)
    return names


def fill_template(template: str, fields: dict[str, str]) -> str:
    """The template with its fields filled; a missing field raises KeyError(name)."""
    for name in template_fields(template):
        if name not in fields:
            raise KeyError(name)
    return template.format_map(fields)


# -- loading ------------------------------------------------------------------------------------------


class _SpecLoader(yaml.SafeLoader):
    """Safe YAML, except that dates stay text: pydantic then reports a bad one with its field name (YAML's own
    timestamp parsing raises a bare ValueError on 2022-13-01)."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_spec(path: Path) -> ReportSpec:
    """Read and validate a spec file; every problem is a ConfigError naming the file, field and line."""
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such report spec", hint="pass a YAML file, e.g. examples/reports/*.yaml"
        )
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_SpecLoader)
        root = yaml.compose(text, Loader=_SpecLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{where}: not valid YAML ({problem})", hint="check indentation and quoting"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a report spec is a mapping with title, corpus and questions or group_by",
            hint="see examples/reports/ for a complete spec",
        )
    try:
        return ReportSpec.model_validate(data)
    except ValidationError as exc:
        problems = [_describe_error(path, root, error) for error in exc.errors()]
        raise ConfigError(
            f"{path}: invalid report spec\n  " + "\n  ".join(problems),
            hint="fields: " + ", ".join(ReportSpec.model_fields) + " (see the README's Reports section)",
        ) from None


def _describe_error(path: Path, root: yaml.Node | None, error: Any) -> str:
    loc = tuple(error["loc"])
    field = _dotted(loc) or "(top level)"
    line = _line_of(root, loc)
    where = f"line {line}: " if line else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(loc[:-1]))
        message = f"unknown key{f' (allowed here: {allowed})' if allowed else ''}"
    elif error["type"] == "missing":
        message = "required field is missing"
    return f"{where}{field}: {message}"


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc` (or of its nearest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
            line = key.start_mark.line + 1 if key is not None else line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = ReportSpec
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def load_group_info(path: Path, key: str) -> dict[str, dict[str, str]]:
    """Records keyed by their `key` field (the group_by field), other scalar fields as strings."""
    if not path.is_file():
        raise ConfigError(f"group_info {path}: no such file", hint="the path is relative to the spec file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            records: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif path.suffix == ".json":
            records = json.loads(text)
        else:
            records = yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"group_info {path}: not valid JSON/YAML ({exc})") from exc
    if isinstance(records, dict):
        records = [{key: k, **(v if isinstance(v, dict) else {"label": v})} for k, v in records.items()]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ConfigError(
            f"group_info {path}: expected a list of records", hint=f"one record per group, each with {key!r}"
        )
    info: dict[str, dict[str, str]] = {}
    for number, record in enumerate(records, 1):
        if key not in record:
            raise ConfigError(f"group_info {path}: record {number} has no {key!r} field")
        scalars = {str(k): str(v) for k, v in record.items() if isinstance(v, str | int | float | bool)}
        info[str(record[key])] = scalars
    return info
