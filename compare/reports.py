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
3. **Render** (`compare.report_view` -> `compare.report_render`): `report.md`, `report.html` (one
   self-contained page from the comparison page's templates: inline CSS and SVG, no script), `report.json` (the
   `Report` model: run metadata + every Comparison) and `comparisons.csv` (question x source).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from compare import __version__
from compare.analysis.engine import Engine
from compare.embedding import CachedEmbedder
from compare.errors import CompareError, ConfigError
from compare.redact import redact
from compare.report_render import render_csv, render_html, render_markdown
from compare.report_spec import (
    CorpusSpec,
    ReportSpec,
    fill_template,
    load_group_info,
)
from compare.settings import Settings
from compare.store import Filters, Store, metadata_key
from compare.types import Comparison, Document, SourceSummary
from compare.view import quote_doc_ids

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
    """Write via a temporary file in the same folder and rename: a reader sees the old file or the new one.
    Redacted first (compare/redact.py): every report file and checkpoint goes through here."""
    text = redact(text)
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


# -- documents for rendering -----------------------------------------------------------------------------


def report_documents(store: Store, report: Report) -> dict[str, Document]:
    """The stored documents the report quotes or lists: titles, dates, links and quote contexts."""
    ids: set[str] = set()
    for res in report.ok:
        assert res.comparison is not None
        ids.update(quote_doc_ids(res.comparison))
        ids.update(ref.doc_id for view in res.comparison.sources for ref in view.documents)
    return store.get_documents(sorted(ids)) if ids else {}


def write_report(report: Report, documents: Mapping[str, Document], out_dir: Path) -> list[Path]:
    """The four output files, each written atomically."""
    outputs = {
        "report.md": render_markdown(report, documents),
        "report.html": render_html(report, documents),
        "report.json": report.model_dump_json(indent=2) + "\n",
        "comparisons.csv": render_csv(report, documents),
    }
    paths = []
    for name, text in outputs.items():
        atomic_write(out_dir / name, text)
        paths.append(out_dir / name)
    return paths
