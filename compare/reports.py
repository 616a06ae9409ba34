"""Batch reports: a spec in (compare/report_spec.py), one Comparison per question, four files out.

plan -> run -> render:

1. **Plan.** The spec's questions, or one question per value of its `group_by` metadata field (the template
   filled with that group's fields, see `group_fields`), then its timeline sections. Each item gets a
   checkpoint key: a hash of question, target, filters, k, the settings hash (backend, prompt, model
   parameters) and a fingerprint of the corpus under the report's filters (ids + content hashes).
2. **Run.** Models and the store are loaded once (`Services`) and every question goes through the same warm
   `Engine`. Each finished question is written to `DIR/.work/<key>.json` (atomic rename) as it completes, so
   `--resume` after a crash or Ctrl-C computes only the keys that have no checkpoint; a question is never
   computed twice. LLM backends run up to `concurrency` questions in threads (rate-limit backoff is the
   backend's); the offline backend is CPU-bound and keeps per-call state, so it runs one question at a time.
   A failing question is recorded with its error and the run goes on.
3. **Render.** `report.md`, `report.html` (one self-contained page: inline CSS and SVG, no script), `report.json`
   (the `Report` model: run metadata + every Comparison) and `comparisons.csv` (question x source). Every
   string from an article or a model goes through compare.render's escaping.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from compare import __version__
from compare import render as r
from compare.analysis.engine import Engine
from compare.embedding import CachedEmbedder
from compare.errors import CompareError, ConfigError
from compare.report_spec import (
    CorpusSpec,
    ReportSpec,
    fill_template,
    load_group_info,
)
from compare.settings import Settings
from compare.store import Filters, Store, metadata_key
from compare.types import Comparison, ComparisonMeta, Document, Shift, SourceSummary, SourceView

CHECKPOINT_VERSION = 1
WORK_DIR = ".work"
OUTPUT_FILES = ("report.md", "report.html", "report.json", "comparisons.csv")
#: Store bookkeeping fields: never template fields.
_INTERNAL_FIELDS = frozenset(
    {"id", "url", "date_int", "origin", "ingested_at", "n_chunks", "duplicate_of", "content_hash"}
)
#: Metadata fields that read as a human label of a group, best first.
LABEL_FIELDS = ("label", "event_title", "main_event", "headline", "storyline_title")
#: Fields the store keeps for itself: a group_by on them cannot be turned into a filter.
_UNGROUPABLE = frozenset({"outlet", "title", "url", *_INTERNAL_FIELDS})
TOP_SHIFTS = 8
TOP_DISAGREEMENTS = 8
_POLARITY = {
    "positive": 1,
    "agree": 1,
    "negative": -1,
    "disagree": -1,
    "mixed": 0,
    "neutral": 0,
    "discuss": 0,
}

ItemKind = Literal["question", "group", "timeline"]


# -- the report model (report.json) ------------------------------------------------------------------


class ReportItem(BaseModel):
    """One planned question of a report."""

    id: str = Field(description="Section id: q01, q02 … for questions and groups, t01 … for timelines.")
    kind: ItemKind
    heading: str = Field(description="Section heading: the question, the group's label, or the timeline.")
    question: str
    target: str | None = Field(default=None, description="Stance target; None: derived from the question.")
    filters: dict[str, Any] = Field(default_factory=dict, description="sources, since, until, where.")
    k: int | None = Field(default=None, description="Chunks per source; None: the settings' k_per_source.")
    group: str | None = Field(default=None, description="The group_by value, for group questions.")
    fields: dict[str, str] = Field(default_factory=dict, description="Template fields of the group.")
    key: str = Field(default="", description="Checkpoint key (hash of everything that sets the result).")
    plan_error: str | None = Field(default=None, description="Why the item could not even be asked.")

    def to_filters(self) -> Filters:
        where = self.filters.get("where") or None
        return Filters(
            sources=list(self.filters.get("sources") or []),
            since=self.filters.get("since"),
            until=self.filters.get("until"),
            where=dict(where) if where else None,
        )


class ItemResult(BaseModel):
    item: ReportItem
    status: Literal["ok", "failed"]
    error: str | None = None
    hint: str | None = None
    comparison: Comparison | None = None
    from_checkpoint: bool = Field(default=False, description="Read from DIR/.work, not computed in this run.")
    seconds: float = Field(default=0.0, description="Time spent on this question when it was computed.")


class CorpusSnapshot(BaseModel):
    """What the report's filters selected when it ran."""

    sources: list[SourceSummary]
    documents: int
    first_date: str | None
    last_date: str | None
    fingerprint: str = Field(description="Hash of the selected documents' ids and content hashes.")


class RunMeta(BaseModel):
    title: str
    description: str = ""
    spec_path: str
    spec_hash: str
    created_at: str
    backend: str
    model: str | None
    prompt: str | None
    settings_hash: str
    package_version: str
    k_per_source: int
    corpus: CorpusSnapshot
    notes: list[str] = Field(default_factory=list)
    questions: int
    ok: int
    failed: int
    computed: int = Field(description="Questions computed in this run.")
    from_checkpoint: int = Field(description="Questions read from checkpoints of an earlier run.")
    tokens_in: int = Field(description="Prompt tokens of all comparisons in the report.")
    tokens_out: int
    cost_usd: float = Field(description="Cost of all comparisons in the report, when they were computed.")
    tokens_in_this_run: int
    tokens_out_this_run: int
    cost_usd_this_run: float = Field(
        description="What this run spent (checkpoints and cached calls are free)."
    )
    cached_calls: int
    concurrency: int
    seconds: float


class Report(BaseModel):
    """report.json: the run metadata and every item, in spec order, with its Comparison or its error."""

    schema_version: int = 1
    run: RunMeta
    items: list[ItemResult]

    @property
    def ok(self) -> list[ItemResult]:
        return [i for i in self.items if i.comparison is not None]


# -- planning ----------------------------------------------------------------------------------------


@dataclass
class Plan:
    spec: ReportSpec
    spec_path: Path
    settings: Settings
    items: list[ReportItem]
    corpus: CorpusSnapshot
    notes: list[str] = field(default_factory=list)


def report_settings(base: Settings, spec: ReportSpec, backend: str | None = None) -> Settings:
    """The settings a report runs with: the spec's backend (or --backend), prompt and top_k applied."""
    update: dict[str, Any] = {}
    if backend or spec.backend:
        update["backend"] = (backend or spec.backend or "").strip()
    if spec.top_k:
        update["k_per_source"] = spec.top_k
    if spec.prompt:
        update["llm"] = base.llm.model_copy(update={"prompt": spec.prompt})
    return base.model_copy(update=update) if update else base


def plan_report(spec: ReportSpec, spec_path: Path, settings: Settings, store: Store) -> Plan:
    """Expand the spec into items, snapshot the corpus and give every item its checkpoint key."""
    rows = [row for row in store.document_metadata(spec.corpus.filters()) if not row.get("duplicate_of")]
    corpus = corpus_snapshot(store, spec.corpus, rows)
    notes: list[str] = []
    if spec.questions is not None:
        items = [
            _question_item(i, q.question, q.target or spec.target, spec.corpus.narrowed(q.corpus()), None)
            for i, q in enumerate(spec.questions, 1)
        ]
    elif spec.group_by is not None:
        items = _group_items(spec, spec_path, rows, notes)
    else:
        items = []
    base_k = settings.k_per_source
    for number, section in enumerate(spec.timeline, 1):
        scope = spec.corpus.narrowed(CorpusSpec.model_construct(sources=[section.source]))
        question = section.question or section.topic
        items.append(
            ReportItem(
                id=f"t{number:02d}",
                kind="timeline",
                heading=f"Timeline: {section.source} on {section.topic}",
                question=question,
                target=section.topic,
                filters=_filters_dict(scope),
                k=section.k or min(50, 3 * base_k),
            )
        )
    for item in items:
        item.key = checkpoint_key(item, settings.settings_hash(), corpus.fingerprint)
    return Plan(spec, spec_path, settings, items, corpus, notes)


def _question_item(
    number: int, question: str, target: str | None, scope: CorpusSpec, k: int | None
) -> ReportItem:
    return ReportItem(
        id=f"q{number:02d}",
        kind="question",
        heading=question,
        question=question,
        target=target,
        filters=_filters_dict(scope),
        k=k,
    )


def _filters_dict(scope: CorpusSpec) -> dict[str, Any]:
    filters = scope.filters()
    return {
        "sources": list(filters.sources),
        "since": filters.since,
        "until": filters.until,
        "where": dict(filters.where or {}),
    }


def corpus_snapshot(store: Store, corpus: CorpusSpec, rows: Sequence[Mapping[str, Any]]) -> CorpusSnapshot:
    summaries = store.sources(corpus.filters())
    firsts = [s.first_date for s in summaries if s.first_date]
    lasts = [s.last_date for s in summaries if s.last_date]
    blob = "\n".join(sorted(f"{row['id']}:{row.get('content_hash', '')}" for row in rows))
    return CorpusSnapshot(
        sources=summaries,
        documents=sum(s.documents for s in summaries),
        first_date=min(firsts, default=None),
        last_date=max(lasts, default=None),
        fingerprint=hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16],
    )


def checkpoint_key(item: ReportItem, settings_hash: str, corpus_fingerprint: str) -> str:
    parts = {
        "version": CHECKPOINT_VERSION,
        "question": item.question,
        "target": item.target,
        "filters": item.filters,
        "k": item.k,
        "settings": settings_hash,
        "corpus": corpus_fingerprint,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:20]


# -- groups ------------------------------------------------------------------------------------------


def _group_items(
    spec: ReportSpec, spec_path: Path, rows: list[dict[str, Any]], notes: list[str]
) -> list[ReportItem]:
    group_by = spec.group_by or ""
    if group_by in _UNGROUPABLE:
        raise ConfigError(
            f"{spec_path}: group_by: {group_by!r} cannot be grouped on",
            hint="group on `source`, `date` or a metadata field such as event_id",
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        value = _group_value(row, group_by)
        if value is not None:
            groups.setdefault(value, []).append(row)
    if not groups:
        raise ConfigError(
            f"{spec_path}: group_by: no document under the corpus filters has a {group_by!r} field",
            hint="see a document's metadata with `ncompare doc ID --json`, and the filters with `ncompare sources`",
        )
    left_out = len(rows) - sum(len(g) for g in groups.values())
    if left_out:
        notes.append(f"{left_out} document(s) without {group_by!r} are in no group")
    info = load_group_info(spec_path.parent / spec.group_info, group_by) if spec.group_info else {}
    values = (
        spec.groups if spec.groups is not None else sorted(groups, key=lambda v: _group_order(groups[v], v))
    )
    items = [
        _group_item(spec, number, value, groups.get(value, []), info.get(value))
        for number, value in enumerate(values, 1)
    ]
    _reject_template_typos(spec_path, items)
    return items


def _group_value(row: Mapping[str, Any], group_by: str) -> str | None:
    value = row.get(group_by if group_by in ("source", "date") else metadata_key(group_by))
    if value is None or value == "":
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def _group_order(rows: list[dict[str, Any]], value: str) -> tuple[str, str]:
    dates = [str(row["date"]) for row in rows if row.get("date")]
    return (min(dates) if dates else "9999", value)


def _group_scope(corpus: CorpusSpec, group_by: str, value: str) -> CorpusSpec:
    if group_by == "source":
        return corpus.narrowed(CorpusSpec.model_construct(sources=[value]))
    if group_by == "date":
        day = date.fromisoformat(value)
        return corpus.narrowed(CorpusSpec.model_construct(since=day, until=day))
    return corpus.narrowed(CorpusSpec.model_construct(where={group_by: value}))


def _group_item(
    spec: ReportSpec, number: int, value: str, rows: list[dict[str, Any]], info: dict[str, str] | None
) -> ReportItem:
    group_by = spec.group_by or ""
    item = ReportItem(
        id=f"q{number:02d}",
        kind="group",
        heading=value,
        question=value,
        group=value,
        filters=_filters_dict(_group_scope(spec.corpus, group_by, value)),
    )
    if not rows:
        item.plan_error = f"no document has {group_by}={value!r} under the corpus filters"
        return item
    item.fields = group_fields(group_by, value, rows, info)
    item.heading = item.fields["label"]
    try:
        item.question = fill_template(spec.question_template or "", item.fields)
        item.target = fill_template(spec.target, item.fields) if spec.target else None
    except KeyError as missing:
        name = str(missing.args[0])
        item.plan_error = (
            f"the template uses {{{name}}}, which group {value!r} does not have; "
            f"available: {', '.join('{' + f + '}' for f in sorted(item.fields))}"
        )
    return item


def _reject_template_typos(spec_path: Path, items: list[ReportItem]) -> None:
    """A field no group has is a typo in the spec: stop before any work, naming it."""
    errors = [i.plan_error for i in items if i.fields]
    if errors and all(e and e.startswith("the template uses") for e in errors):
        raise ConfigError(f"{spec_path}: question_template/target: {errors[0]}")


def group_fields(
    group_by: str, value: str, rows: Sequence[Mapping[str, Any]], info: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Template fields of one group.

    - metadata fields with one value across the group's documents (e.g. {event_id}, {storyline});
    - {value} and {<group_by>}: the group value; {group_by}: the field's name;
    - {sources}: source keys, comma-separated; {source_list}: outlet names (else keys), "A, B and C";
    - {documents}: how many; {first_date}, {last_date}, {date_range}: "2022-02-24 – 2022-02-26" or one day;
    - {title}: the earliest document's title;
    - the group_info record's fields, if the spec names a group_info file (they win over the above);
    - {label}: the group_info label (label, event_title, main_event, headline), else the most common such
      metadata field among the documents, else {title}.
    """
    ordered = sorted(rows, key=lambda row: (str(row.get("date") or "9999"), str(row.get("title") or "")))
    fields = _shared_metadata(ordered)
    sources = sorted({str(row["source"]) for row in ordered})
    outlets = list(dict.fromkeys(str(row.get("outlet") or row["source"]) for row in ordered))
    dates = sorted(str(row["date"]) for row in ordered if row.get("date"))
    first, last = (dates[0], dates[-1]) if dates else ("undated", "undated")
    fields.update(
        {
            "value": value,
            "group_by": group_by,
            group_by: value,
            "sources": ", ".join(sources),
            "source_list": human_join(outlets),
            "documents": str(len(ordered)),
            "first_date": first,
            "last_date": last,
            "date_range": first if first == last else f"{first} – {last}",
            "title": str(ordered[0].get("title") or value),
        }
    )
    fields.update(info or {})
    fields["label"] = _label(info or {}, ordered) or fields["title"]
    for name in ("label", "title"):  # they end a template's sentence: "… describe {label}?" not "….?"
        fields[name] = fields[name].strip().rstrip(".?!:; ") or fields[name]
    return fields


def _shared_metadata(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    keys = set.intersection(*(set(row) for row in rows)) - _INTERNAL_FIELDS if rows else set()
    shared = {}
    for key in sorted(keys):
        values = {str(row[key]) for row in rows}
        if len(values) == 1 and key.isidentifier():
            shared[key.removeprefix("meta_")] = values.pop()
    return shared


def _label(info: Mapping[str, str], rows: Sequence[Mapping[str, Any]]) -> str | None:
    for name in LABEL_FIELDS:
        if info.get(name):
            return info[name]
    for name in LABEL_FIELDS:
        values = [str(row[name]) for row in rows if row.get(name)]
        if values:
            return Counter(values).most_common(1)[0][0]
    return None


def human_join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# -- checkpoints -------------------------------------------------------------------------------------


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def checkpoint_path(work_dir: Path, key: str) -> Path:
    return work_dir / f"{key}.json"


def save_checkpoint(work_dir: Path, result: ItemResult) -> None:
    atomic_write(checkpoint_path(work_dir, result.item.key), result.model_dump_json())


def load_checkpoint(work_dir: Path, item: ReportItem) -> ItemResult | None:
    """The saved result for this item's key, re-labelled with the current item; None when absent or unusable."""
    path = checkpoint_path(work_dir, item.key)
    if not path.is_file():
        return None
    try:
        saved = ItemResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, OSError, UnicodeDecodeError):
        return None  # unreadable: computed again, and the file is replaced
    if saved.item.key != item.key or saved.comparison is None:
        return None
    return saved.model_copy(update={"item": item, "from_checkpoint": True})


# -- running -----------------------------------------------------------------------------------------


class ReportInterrupted(Exception):
    """Ctrl-C during a run: what was finished is saved in the work dir."""

    def __init__(self, saved: int, total: int, work_dir: Path) -> None:
        super().__init__(f"interrupted: {saved} of {total} question(s) saved in {work_dir}")
        self.saved = saved
        self.total = total
        self.work_dir = work_dir


ResultCallback = Callable[[ItemResult], None]


def backend_runs_in_parallel(backend: str) -> bool:
    """LLM backends wait on the network: worth threads. The offline backend is CPU-bound and stateful."""
    return backend.strip().partition(":")[0] != "offline"


@dataclass
class ReportRunner:
    """Runs a plan through one warm engine, checkpointing every finished question."""

    engine: Engine
    out_dir: Path
    resume: bool = False
    concurrency: int = 1
    on_result: ResultCallback | None = None
    computed_keys: list[str] = field(default_factory=list)

    @property
    def work_dir(self) -> Path:
        return self.out_dir / WORK_DIR

    def run(self, plan: Plan) -> Report:
        started = time.perf_counter()
        self.engine.backend(plan.settings.backend)  # an unknown backend or prompt stops here, before any work
        self.work_dir.mkdir(parents=True, exist_ok=True)
        by_key: dict[str, ItemResult] = {}
        try:
            todo = self._reuse_checkpoints(plan, by_key)
            for result in self._compute_all(todo, plan.settings.backend):
                by_key[result.item.key] = result
                self._emit(result)
        except KeyboardInterrupt:
            done = sum(1 for i in plan.items if checkpoint_path(self.work_dir, i.key).is_file())
            raise ReportInterrupted(done, len(plan.items), self.work_dir) from None
        results = [_result_for(item, by_key) for item in plan.items]
        self._forget_stale_checkpoints(plan)
        return Report(run=self._run_meta(plan, results, time.perf_counter() - started), items=results)

    def _reuse_checkpoints(self, plan: Plan, by_key: dict[str, ItemResult]) -> list[ReportItem]:
        """Report planned failures and (with resume) checkpointed questions; return the items to compute."""
        todo: dict[str, ReportItem] = {}
        for item in plan.items:
            if item.plan_error:
                self._emit(ItemResult(item=item, status="failed", error=item.plan_error))
            elif item.key not in by_key and item.key not in todo:
                saved = load_checkpoint(self.work_dir, item) if self.resume else None
                if saved is None:
                    todo[item.key] = item
                else:
                    by_key[item.key] = saved
                    self._emit(saved)
        return list(todo.values())

    def _emit(self, result: ItemResult) -> None:
        if self.on_result is not None:
            self.on_result(result)

    def _compute_all(self, todo: list[ReportItem], backend: str) -> Iterator[ItemResult]:
        if self.concurrency <= 1 or len(todo) <= 1 or not backend_runs_in_parallel(backend):
            for item in todo:
                yield self.compute(item)
            return
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ncompare-report")
        futures = [pool.submit(self.compute, item) for item in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            # On Ctrl-C: questions not started are dropped; running ones finish and save their checkpoint.
            pool.shutdown(wait=False, cancel_futures=True)

    def compute(self, item: ReportItem) -> ItemResult:
        """One question through the engine; a failure becomes a failed result, never an exception."""
        started = time.perf_counter()
        try:
            comparison = self.question_engine().compare(
                item.question, filters=item.to_filters(), k=item.k, target=item.target
            )
        except ConfigError:
            raise  # wrong settings (a missing API key, an unknown prompt) fail every question: stop the run
        except CompareError as exc:
            return _failed(item, exc.message, exc.hint, started)
        except Exception as exc:  # a bug in one question must not sink the others
            hint = "unexpected error: please report it with this question and report.json"
            return _failed(item, f"{type(exc).__name__}: {exc}", hint, started)
        result = ItemResult(
            item=item, status="ok", comparison=comparison, seconds=round(time.perf_counter() - started, 3)
        )
        save_checkpoint(self.work_dir, result)
        self.computed_keys.append(item.key)
        return result

    def question_engine(self) -> Engine:
        """An engine sharing the loaded model and store, with its own backends and embedding memo.

        A question's answer must not depend on the questions computed before it in the same process: resume
        must give the same report, and a report question the same answer as `ncompare ask`. The int8
        embedder's vectors vary slightly with the batch they are computed in, so a vector remembered from an
        earlier question (the embedder's memo, the offline backend's sentence cache) would change later
        answers. Backends and memos are cheap to build; the model stays loaded."""
        embedder = self.engine.embedder
        if isinstance(embedder, CachedEmbedder):
            embedder = CachedEmbedder(embedder.inner, embedder.max_items)
        return Engine(self.engine.settings, self.engine.store, embedder)

    def _forget_stale_checkpoints(self, plan: Plan) -> None:
        """Checkpoints of questions that are no longer in the plan (spec, settings or corpus changed)."""
        current = {item.key for item in plan.items}
        for path in self.work_dir.glob("*.json"):
            if path.stem not in current and re.fullmatch(r"[0-9a-f]{20}", path.stem):
                path.unlink(missing_ok=True)
        for path in self.work_dir.glob(".*.tmp"):  # a write cut short by a kill
            path.unlink(missing_ok=True)

    def _run_meta(self, plan: Plan, results: list[ItemResult], seconds: float) -> RunMeta:
        unique = list({res.item.key: res for res in results if res.comparison is not None}.values())
        metas = [res.comparison.meta for res in unique if res.comparison is not None]
        fresh = [res.comparison.meta for res in unique if res.comparison and not res.from_checkpoint]
        backend = self.engine.backend(plan.settings.backend)
        spec_text = plan.spec_path.read_bytes() if plan.spec_path.is_file() else b""
        llm = backend_runs_in_parallel(plan.settings.backend)
        return RunMeta(
            title=plan.spec.title,
            description=plan.spec.description,
            spec_path=str(plan.spec_path),
            spec_hash=hashlib.sha256(spec_text).hexdigest()[:12],
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            backend=plan.settings.backend,
            model=next((m.model for m in metas if m.model), backend.model),
            prompt=next((m.prompt for m in metas if m.prompt), plan.settings.llm.prompt if llm else None),
            settings_hash=plan.settings.settings_hash(),
            package_version=__version__,
            k_per_source=plan.settings.k_per_source,
            corpus=plan.corpus,
            notes=plan.notes,
            questions=len(results),
            ok=sum(1 for res in results if res.status == "ok"),
            failed=sum(1 for res in results if res.status == "failed"),
            computed=len(fresh),
            from_checkpoint=sum(1 for res in unique if res.from_checkpoint),
            tokens_in=sum(m.tokens_in for m in metas),
            tokens_out=sum(m.tokens_out for m in metas),
            cost_usd=round(sum(m.cost_usd for m in metas), 6),
            tokens_in_this_run=sum(m.tokens_in for m in fresh),
            tokens_out_this_run=sum(m.tokens_out for m in fresh),
            cost_usd_this_run=round(sum(m.cost_usd for m in fresh), 6),
            cached_calls=sum(m.cached_calls for m in fresh),
            concurrency=self.concurrency if llm else 1,
            seconds=round(seconds, 3),
        )


def _failed(item: ReportItem, message: str, hint: str | None, started: float) -> ItemResult:
    return ItemResult(
        item=item, status="failed", error=message, hint=hint, seconds=round(time.perf_counter() - started, 3)
    )


def _result_for(item: ReportItem, by_key: Mapping[str, ItemResult]) -> ItemResult:
    if item.plan_error:
        return ItemResult(item=item, status="failed", error=item.plan_error)
    return by_key[item.key].model_copy(update={"item": item})


# -- dry run -------------------------------------------------------------------------------------------


@dataclass
class EstimateRow:
    item: ReportItem
    prompt_tokens: int = 0
    completion_tokens_max: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    checkpoint: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "question": self.item.question,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens_max": self.completion_tokens_max,
            "cost_usd": self.cost_usd,
            "calls": self.calls,
            "checkpoint": self.checkpoint,
            "error": self.error,
            "notes": self.notes,
        }


def estimate_plan(engine: Engine, plan: Plan, work_dir: Path, *, resume: bool) -> list[EstimateRow]:
    """Prompt tokens and cost per question, nothing sent; with resume, checkpointed questions cost 0."""
    rows = []
    for item in plan.items:
        row = EstimateRow(item)
        if item.plan_error:
            row.error = item.plan_error
        elif resume and load_checkpoint(work_dir, item) is not None:
            row.checkpoint = True
        else:
            try:
                found = engine.estimate(item.question, filters=item.to_filters(), k=item.k)
            except CompareError as exc:
                row.error = exc.message
            else:
                row.prompt_tokens, row.completion_tokens_max = (
                    found.prompt_tokens,
                    found.completion_tokens_max,
                )
                row.cost_usd, row.calls, row.notes = found.cost_usd, found.calls, list(found.notes)
        rows.append(row)
    return rows


# -- the executive overview ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedShift:
    item: ReportItem
    shift: Shift


Position3 = tuple[str, str, float | None]  # (source, label, confidence)


@dataclass(frozen=True)
class Disagreement:
    """Sources on opposite or different sides: of a question's overall stance, or of one claim."""

    item: ReportItem
    kind: Literal["stance", "claim"]
    claim: str
    positions: list[Position3]
    opposed: bool
    quotes: list[Any] = field(default_factory=list)


def biggest_shifts(report: Report, limit: int = TOP_SHIFTS) -> list[RankedShift]:
    ranked = [RankedShift(res.item, s) for res in report.ok for s in res.comparison.shifts]  # type: ignore[union-attr]
    return sorted(ranked, key=lambda x: -x.shift.score)[:limit]


def disagreements(report: Report, limit: int = TOP_DISAGREEMENTS) -> list[Disagreement]:
    """Opposed stances first, then claims the sources take opposite or different positions on."""
    found: list[Disagreement] = []
    for res in report.ok:
        comparison = res.comparison
        assert comparison is not None
        views = [v for v in comparison.sources if not v.stance.low_confidence and v.stance.label in _POLARITY]
        labels = {v.stance.label for v in views}
        if len(labels) > 1:
            positions: list[Position3] = [(v.source, str(v.stance.label), v.stance.confidence) for v in views]
            found.append(Disagreement(res.item, "stance", comparison.target, positions, _opposed(labels)))
        for difference in comparison.differences:
            quoted = [p for p in difference.positions if p.quotes and p.position in _POLARITY]
            kinds = {p.position for p in quoted}
            if len({_POLARITY[k] for k in kinds}) > 1:
                claim_sides: list[Position3] = [(p.source, str(p.position), None) for p in quoted]
                quotes = [p.quotes[0] for p in quoted]
                found.append(
                    Disagreement(res.item, "claim", difference.claim, claim_sides, _opposed(kinds), quotes)
                )
    found.sort(key=lambda d: (not d.opposed, d.kind != "stance", -len(d.positions)))
    return found[:limit]


def _opposed(labels: Iterable[str]) -> bool:
    polarities = {_POLARITY.get(label, 0) for label in labels}
    return 1 in polarities and -1 in polarities


def stance_overview(report: Report) -> Comparison | None:
    """Every question's per-source stances on one chart (a synthetic comparison for render.timeline_svg)."""
    views: list[SourceView] = [
        v
        for res in report.ok
        if res.item.kind != "timeline"
        for v in res.comparison.sources  # type: ignore[union-attr]
        if v.first_date or v.last_date
    ]
    if len({(v.first_date, v.last_date) for v in views}) < 2:
        return None
    meta = ComparisonMeta(
        backend=report.run.backend, settings_hash=report.run.settings_hash, package_version=__version__
    )
    return Comparison(question=report.run.title, target="", sources=views, meta=meta)


# -- documents for rendering -----------------------------------------------------------------------------


def report_documents(store: Store, report: Report) -> dict[str, Document]:
    """The stored documents the report quotes or lists: titles, dates, links and quote contexts."""
    ids: set[str] = set()
    for res in report.ok:
        assert res.comparison is not None
        ids.update(r.quote_doc_ids(res.comparison))
        ids.update(ref.doc_id for view in res.comparison.sources for ref in view.documents)
    return store.get_documents(sorted(ids)) if ids else {}


def write_report(report: Report, documents: Mapping[str, Document], out_dir: Path) -> list[Path]:
    """The four output files, each written atomically."""
    outputs = {
        "report.md": render_markdown(report, documents),
        "report.html": render_html(report, documents),
        "report.json": report.model_dump_json(indent=2) + "\n",
        "comparisons.csv": render_csv(report),
    }
    paths = []
    for name, text in outputs.items():
        atomic_write(out_dir / name, text)
        paths.append(out_dir / name)
    return paths


# -- CSV ---------------------------------------------------------------------------------------------------

CSV_FIELDS = (
    "question_id",
    "kind",
    "group",
    "question",
    "status",
    "error",
    "source",
    "outlet",
    "stance",
    "stance_target",
    "confidence",
    "low_confidence",
    "quotes_verified",
    "quotes_repaired",
    "shifts",
    "documents",
    "first_date",
    "last_date",
    "from_checkpoint",
    "backend",
    "settings_hash",
    "package_version",
    "created_at",
)


def csv_rows(report: Report) -> list[dict[str, object]]:
    """One row per question x source; a failed question is one row with its error and no source."""
    rows: list[dict[str, object]] = []
    for res in report.items:
        common = {
            "question_id": res.item.id,
            "kind": res.item.kind,
            "group": res.item.group or "",
            "question": res.item.question,
            "status": res.status,
            "error": res.error or "",
            "from_checkpoint": res.from_checkpoint,
            "backend": report.run.backend,
            "settings_hash": report.run.settings_hash,
            "package_version": report.run.package_version,
        }
        if res.comparison is None:
            rows.append({key: common.get(key, "") for key in CSV_FIELDS})
            continue
        for row in r.csv_rows(res.comparison):
            merged = {**row, **common, "created_at": row.get("created_at", "")}
            rows.append({key: merged.get(key, "") for key in CSV_FIELDS})
    return rows


def render_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow({key: r.csv_safe(value) for key, value in row.items()})
    return buffer.getvalue()


# -- shared wording -------------------------------------------------------------------------------------


def run_facts(report: Report) -> list[tuple[str, str]]:
    """(label, plain text) rows describing how the report was made."""
    run = report.run
    corpus = run.corpus
    facts = [
        ("backend", run.backend),
        ("model", run.model or "—"),
        ("prompt", run.prompt or "— (no prompt: offline analysis)"),
        ("settings hash", run.settings_hash),
        ("chunks per source", str(run.k_per_source)),
        ("narrative-compare", run.package_version),
        ("generated", run.created_at),
        ("spec", f"{run.spec_path} (sha256 {run.spec_hash})"),
        (
            "corpus",
            f"{corpus.documents} documents from {len(corpus.sources)} source(s), "
            f"{corpus.first_date or 'undated'} – {corpus.last_date or 'undated'} (fingerprint {corpus.fingerprint})",
        ),
        (
            "questions",
            f"{run.questions}: {run.ok} answered, {run.failed} failed; {run.computed} computed in this run, "
            f"{run.from_checkpoint} from checkpoints",
        ),
        (
            "tokens",
            f"{run.tokens_in} in + {run.tokens_out} out (this run: {run.tokens_in_this_run} + "
            f"{run.tokens_out_this_run}, {run.cached_calls} cached call(s))",
        ),
        ("cost", f"${run.cost_usd:.4f} for the report; this run spent ${run.cost_usd_this_run:.4f}"),
        ("time", f"{run.seconds:.1f} s (concurrency {run.concurrency})"),
    ]
    return facts


def _stance_text(view: SourceView) -> str:
    low = "?" if view.stance.low_confidence else ""
    return f"{view.source}: {view.stance.label}{low} {view.stance.confidence:.2f}"


def _item_facts(res: ItemResult) -> list[str]:
    item = res.item
    facts = [f"Question: {item.question}"]
    if res.comparison is not None:
        facts.append(f"Stance toward: {res.comparison.target}")
    scope = r.filters_line(Comparison.model_construct(filters=item.filters))
    if scope:
        facts.append(f"Filters: {scope}")
    if res.comparison is not None:
        facts.append(r.meta_line(res.comparison) + (" · from checkpoint" if res.from_checkpoint else ""))
    return facts


def _quoted_documents(comparison: Comparison, documents: Mapping[str, Document]) -> list[Document]:
    docs = [documents[i] for i in r.quote_doc_ids(comparison) if i in documents]
    return sorted(docs, key=lambda d: (d.date or "9999", d.id))


def _chronology(comparison: Comparison) -> list[tuple[str, str | None, list[Any]]]:
    """(doc_id, date, its quotes) for every document of the sources, in date order."""
    quotes_by_doc: dict[str, list[Any]] = {}
    for quote in r.unique_quotes(comparison.presented_quotes()):
        if quote.status != "unverified":
            quotes_by_doc.setdefault(quote.doc_id, []).append(quote)
    refs = {ref.doc_id: ref for view in comparison.sources for ref in view.documents}
    ordered = sorted(refs.values(), key=lambda ref: (ref.date or "9999", ref.doc_id))
    return [(ref.doc_id, ref.date, quotes_by_doc.get(ref.doc_id, [])[:3]) for ref in ordered]


# -- HTML ----------------------------------------------------------------------------------------------

REPORT_CSS = """
.nc-report header p{max-width:60em}
.nc-kv{border-collapse:collapse;font-size:.88em}
.nc-kv th{text-align:left;padding:2px 12px 2px 0;color:#59636e;font-weight:500;vertical-align:top;white-space:nowrap}
.nc-kv td{padding:2px 0;overflow-wrap:anywhere}
.nc-toc ol{margin:.3em 0;padding-left:1.6em}
.nc-toc li{margin:.15em 0}
.nc-question{margin-top:2.2em;border-top:3px solid #d0d7de}
.nc-question h2{border-bottom:none;margin-top:.6em}
.nc-question h3{margin:1.2em 0 .4em;font-size:1.05em}
.nc-error{color:#a40e26;background:#ffebe9;border:1px solid #ffcecb;border-radius:6px;padding:8px 12px}
.nc-status-failed{color:#a40e26;font-weight:600}
.nc-card{border:1px solid #d0d7de;border-radius:8px;padding:8px 12px;margin:.5em 0}
.nc-chrono td:first-child{white-space:nowrap}
@media print{
  .nc-report{max-width:none;padding:0;font-size:10.5pt;color:#000}
  .nc-question{break-before:page;border-top:none}
  .nc-source,.nc-shift,.nc-card,.nc-quote,tr,svg{break-inside:avoid}
  .nc-grid{display:block}.nc-source{margin-bottom:8px}
  .nc-quote summary{list-style:none}
  a{color:inherit;text-decoration:underline}
  .nc-table th{background:#eee!important;-webkit-print-color-adjust:exact;print-color-adjust:exact}
  .nc-badge,.nc-yes,.nc-no,mark{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def render_html(report: Report, documents: Mapping[str, Document]) -> str:
    """One self-contained page: inline CSS and SVG, no script, no external resource; all text escaped."""
    esc = r.esc
    run = report.run
    body = [
        f"<header><h1>{esc(run.title)}</h1>",
        f"<p>{esc(run.description)}</p>" if run.description else "",
        f'<div class="nc-meta">{esc(_summary_line(report))}</div></header>',
        _run_html(report),
        _toc_html(report),
        _overview_html(report, documents),
        *(_section_html(number, res, documents) for number, res in enumerate(report.items, 1)),
        f'<footer class="nc-meta" style="margin-top:3em">narrative-compare {esc(run.package_version)} · '
        f"settings {esc(run.settings_hash)} · {esc(run.created_at)}</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        f"<title>{esc(run.title)} — narrative-compare report</title>"
        f"<style>{r.CSS}{REPORT_CSS}</style></head>"
        f'<body><main class="nc-report">{"".join(body)}</main></body></html>\n'
    )


def _summary_line(report: Report) -> str:
    run = report.run
    return (
        f"{run.questions} question(s), {run.ok} answered, {run.failed} failed · backend {run.backend}"
        f" · {run.created_at}"
    )


def _run_html(report: Report) -> str:
    esc = r.esc
    facts = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in run_facts(report))
    corpus = report.run.corpus
    rows = "".join(
        f"<tr><td>{r.breakable(s.source)}</td><td>{esc(s.outlet or '')}</td><td>{s.documents}</td>"
        f"<td>{esc(s.first_date or '—')}</td><td>{esc(s.last_date or '—')}</td></tr>"
        for s in corpus.sources
    )
    notes = "".join(f'<p class="nc-meta">Note: {esc(n)}</p>' for n in report.run.notes)
    return (
        f'<section id="run"><h2>How this report was made</h2><table class="nc-kv">{facts}</table>'
        '<h3>Corpus snapshot</h3><table class="nc-table" style="width:auto"><thead><tr><th>source</th>'
        f"<th>outlet</th><th>documents</th><th>first</th><th>last</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{notes}</section>"
    )


def _toc_html(report: Report) -> str:
    esc = r.esc
    entries = "".join(
        f'<li><a href="#{esc(res.item.id)}">{esc(res.item.heading)}</a>'
        + (' <span class="nc-status-failed">failed</span>' if res.status == "failed" else "")
        + "</li>"
        for res in report.items
    )
    return f'<nav class="nc-toc" id="contents"><h2>Contents</h2><ol>{entries}</ol></nav>'


def _overview_html(report: Report, documents: Mapping[str, Document]) -> str:
    parts = ['<section id="overview"><h2>Executive overview</h2>', _glance_html(report)]
    chart = stance_overview(report)
    if chart is not None:
        parts += ["<h3>Stance per source, question by question</h3>", r.timeline_svg(chart)]
    parts.append("<h3>Biggest shifts</h3>")
    shifts = biggest_shifts(report)
    parts += [_ranked_shift_html(s, documents) for s in shifts] or [
        '<p class="nc-meta">No shift found in any question.</p>'
    ]
    parts.append("<h3>Disagreements</h3>")
    found = disagreements(report)
    parts += [_disagreement_html(d, documents) for d in found] or [
        '<p class="nc-meta">The sources take no opposite or different positions in any question.</p>'
    ]
    failed = [res for res in report.items if res.status == "failed"]
    if failed:
        parts.append("<h3>Failed questions</h3><ul>")
        parts += [
            f'<li><a href="#{r.esc(res.item.id)}">{r.esc(res.item.heading)}</a>: {r.esc(res.error)}</li>'
            for res in failed
        ]
        parts.append("</ul>")
    return "".join(parts) + "</section>"


def _glance_html(report: Report) -> str:
    esc = r.esc
    rows = []
    for number, res in enumerate(report.items, 1):
        link = f'<a href="#{esc(res.item.id)}">{number}. {esc(res.item.heading)}</a>'
        if res.comparison is None:
            rows.append(
                f'<tr><td>{link}</td><td colspan="3" class="nc-status-failed">failed: '
                f"{esc(res.error)}</td></tr>"
            )
            continue
        stances = "<br>".join(
            f"{r.breakable(v.source)} {r.stance_badge_html(v.stance)}" for v in res.comparison.sources
        )
        rows.append(
            f"<tr><td>{link}</td><td>{stances}</td><td>{len(res.comparison.shifts)}</td>"
            f"<td>{len(res.comparison.differences)}</td></tr>"
        )
    return (
        '<table class="nc-table"><thead><tr><th style="width:40%">question</th><th>stance per source</th>'
        f"<th>shifts</th><th>differences</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _ranked_shift_html(ranked: RankedShift, documents: Mapping[str, Document]) -> str:
    item = ranked.item
    single = Comparison.model_construct(shifts=[ranked.shift])
    return (
        f'<div class="nc-card"><div class="nc-meta"><a href="#{r.esc(item.id)}">{r.esc(item.heading)}</a></div>'
        f"{r.shifts_html(single, documents)}</div>"
    )


def _disagreement_html(found: Disagreement, documents: Mapping[str, Document]) -> str:
    esc = r.esc
    what = "overall stance toward" if found.kind == "stance" else "claim"
    sides = " · ".join(
        f"{esc(source)} {_label_badge(label)}" + (f" {confidence:.2f}" if confidence is not None else "")
        for source, label, confidence in found.positions
    )
    quotes = "".join(r.quote_html(q, documents) for q in found.quotes)
    strength = "opposed" if found.opposed else "different"
    return (
        f'<div class="nc-card"><div class="nc-meta"><a href="#{esc(found.item.id)}">{esc(found.item.heading)}'
        f"</a> · {strength}</div><div>{what} “{esc(found.claim)}”</div><div>{sides}</div>{quotes}</div>"
    )


def _label_badge(label: str) -> str:
    fg, bg = r.STANCE_COLOURS.get(label, r.STANCE_COLOURS["neutral"])
    return (
        f'<span class="nc-badge" style="color:{fg};background:{bg}">{r.esc(label.replace("_", " "))}</span>'
    )


def _section_html(number: int, res: ItemResult, documents: Mapping[str, Document]) -> str:
    esc = r.esc
    item = res.item
    classes = "nc-question" + (" nc-timeline-item" if item.kind == "timeline" else "")
    head = (
        f'<section class="{classes}" id="{esc(item.id)}" data-status="{res.status}">'
        f"<h2>{number}. {esc(item.heading)}</h2>"
        + "".join(f'<div class="nc-meta">{esc(fact)}</div>' for fact in _item_facts(res))
    )
    if res.comparison is None:
        hint = f'<div class="nc-meta">→ {esc(res.hint)}</div>' if res.hint else ""
        return f'{head}<p class="nc-error">This question failed: {esc(res.error)}</p>{hint}</section>'
    comparison = res.comparison
    warnings = "".join(f'<p class="nc-meta">⚠ {esc(w)}</p>' for w in comparison.meta.warnings)
    parts = [
        head,
        warnings,
        "<h3>Sources side by side</h3>",
        '<div class="nc-grid">'
        + "".join(r.source_card_html(v, documents) for v in comparison.sources)
        + "</div>",
        "<h3>Change over time</h3>",
        r.timeline_svg(comparison),
        r.shifts_html(comparison, documents),
    ]
    if item.kind == "timeline":  # one source: nothing to agree or differ with, so its documents instead
        parts += ["<h3>Document by document</h3>", _chronology_html(comparison, documents)]
    else:
        parts += _cross_source_html(comparison, documents)
    parts += [
        "<h3>Documents quoted</h3>",
        _documents_html(_quoted_documents(comparison, documents)),
        "</section>",
    ]
    return "".join(parts)


def _cross_source_html(comparison: Comparison, documents: Mapping[str, Document]) -> list[str]:
    return [
        "<h3>Agreements</h3>",
        r.agreements_html(comparison, documents),
        "<h3>Differences</h3>",
        r.differences_html(comparison, documents),
        "<h3>Omissions</h3>",
        r.omission_matrix_html(comparison),
    ]


def _document_cell(document: Document | None, doc_id: str) -> str:
    esc = r.esc
    if document is None:
        return f"<code>{esc(doc_id)}</code> (no longer in the store)"
    title = esc(document.title or document.id)
    url = r.safe_url(document.url)
    linked = f'<a href="{esc(url)}" rel="noopener noreferrer">{title}</a>' if url else title
    return f"{linked}<br><code>{esc(document.id)}</code>"


def _documents_html(docs: Sequence[Document]) -> str:
    if not docs:
        return '<p class="nc-meta">No quote.</p>'
    rows = "".join(
        f"<tr><td>{r.esc(d.date or 'undated')}</td><td>{r.breakable(d.source)}</td>"
        f"<td>{_document_cell(d, d.id)}</td><td>{r.esc(r.safe_url(d.url) or '')}</td></tr>"
        for d in docs
    )
    return (
        '<table class="nc-table"><thead><tr><th>date</th><th>source</th><th>document</th><th>URL</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _chronology_html(comparison: Comparison, documents: Mapping[str, Document]) -> str:
    rows = "".join(
        f"<tr><td>{r.esc(day or 'undated')}</td><td>{_document_cell(documents.get(doc_id), doc_id)}</td>"
        f"<td>{''.join(r.quote_html(q, documents) for q in quotes) or '—'}</td></tr>"
        for doc_id, day, quotes in _chronology(comparison)
    )
    return (
        '<table class="nc-table nc-chrono"><thead><tr><th>date</th><th style="width:30%">document</th>'
        f"<th>what it says (verified quotes)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


# -- Markdown -------------------------------------------------------------------------------------------


def render_markdown(report: Report, documents: Mapping[str, Document]) -> str:
    """The report as Markdown; article and model text is escaped so nothing in it renders as markup."""
    md = r.escape_markdown
    run = report.run
    lines = [f"# {md(run.title)}", ""]
    lines += [md(run.description), ""] if run.description else []
    lines += ["## How this report was made", ""]
    lines += [f"- **{label}**: {md(text)}" for label, text in run_facts(report)]
    lines += ["", "| source | outlet | documents | first | last |", "|---|---|---|---|---|"]
    lines += [
        f"| {md(s.source)} | {md(s.outlet or '')} | {s.documents} | {s.first_date or '—'} | {s.last_date or '—'} |"
        for s in run.corpus.sources
    ]
    lines += [""] + [f"Note: {md(note)}" for note in run.notes]
    lines += ["", *_overview_markdown(report)]
    for number, res in enumerate(report.items, 1):
        lines += ["", *_section_markdown(number, res, documents)]
    return "\n".join(lines).rstrip() + "\n"


def _overview_markdown(report: Report) -> list[str]:
    md = r.escape_markdown
    lines = ["## Executive overview", "", "| # | question | stance per source | shifts | differences |"]
    lines.append("|---|---|---|---|---|")
    for number, res in enumerate(report.items, 1):
        if res.comparison is None:
            lines.append(f"| {number} | {md(res.item.heading)} | **failed**: {md(res.error)} | | |")
            continue
        stances = "; ".join(md(_stance_text(v)) for v in res.comparison.sources)
        lines.append(
            f"| {number} | {md(res.item.heading)} | {stances} | {len(res.comparison.shifts)} "
            f"| {len(res.comparison.differences)} |"
        )
    lines += ["", "### Biggest shifts", ""]
    for ranked in biggest_shifts(report):
        shift = ranked.shift
        lines.append(
            f"- {md(ranked.item.id)} **{md(shift.source)}** — {md(shift.description)} (evidence {shift.score:.2f})"
            f"\n  - before ({shift.before.date or shift.before.quote.date or 'undated'}, {shift.before.stance}): "
            f"“{md(r.clip(shift.before.quote.text))}” ({shift.before.quote.status})"
            f"\n  - after ({shift.after.date or shift.after.quote.date or 'undated'}, {shift.after.stance}): "
            f"“{md(r.clip(shift.after.quote.text))}” ({shift.after.quote.status})"
        )
    if not biggest_shifts(report):
        lines.append("No shift found in any question.")
    lines += ["", "### Disagreements", ""]
    for found in disagreements(report):
        sides = "; ".join(
            f"{source}: {label}" + (f" {confidence:.2f}" if confidence is not None else "")
            for source, label, confidence in found.positions
        )
        what = "overall stance toward" if found.kind == "stance" else "claim"
        lines.append(
            f"- {md(found.item.id)} ({'opposed' if found.opposed else 'different'}) {what} "
            f"“{md(found.claim)}”: {md(sides)}"
        )
    if not disagreements(report):
        lines.append("The sources take no opposite or different positions in any question.")
    return lines


def _section_markdown(number: int, res: ItemResult, documents: Mapping[str, Document]) -> list[str]:
    md = r.escape_markdown
    lines = [f"## {number}. {md(res.item.heading)}", ""]
    lines += [md(fact) + "  " for fact in _item_facts(res)]
    if res.comparison is None:
        lines += ["", f"**This question failed:** {md(res.error)}"]
        return lines + ([f"→ {md(res.hint)}"] if res.hint else [])
    body = r.to_markdown(res.comparison, documents).splitlines()
    start = next((i for i, line in enumerate(body) if line.startswith("## ")), len(body))
    # compare.render's headings start at "#" for the question: one level down here, under "## N. heading".
    lines += ["", *(("#" + line) if re.match(r"#{1,5} ", line) else line for line in body[start:])]
    if res.item.kind == "timeline":
        lines += ["", "### Document by document", ""]
        for doc_id, day, quotes in _chronology(res.comparison):
            title = documents[doc_id].title if doc_id in documents else None
            lines.append(f"- {day or 'undated'} — {md(title or doc_id)} ({md(doc_id)})")
            lines += [f"  - “{md(r.clip(q.text))}” ({q.status})" for q in quotes]
    lines += ["", "### Documents quoted", ""]
    for doc in _quoted_documents(res.comparison, documents):
        url = r.safe_url(doc.url)
        link = f" <{url}>" if url and not re.search(r"[\s<>]", url) else ""
        lines.append(
            f"- {doc.date or 'undated'} · {md(doc.source)} · {md(doc.title or doc.id)} ({md(doc.id)}){link}"
        )
    return lines
