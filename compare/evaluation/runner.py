"""The eval matrix: every case of a suite under every column (prompt x backend), each answer scored.

A column is one backend, and for LLM backends one prompt: the offline backend takes no prompt, so it is one
column whatever the prompts. `replay:CASSETTE` is an LLM backend served by a loopback ReplayServer; its
column keeps the `replay:` name so results compare across runs (the server's port changes every run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare import __version__
from compare.analysis.base import parse_backend_spec
from compare.analysis.engine import Engine
from compare.analysis.quotes import verify_quote
from compare.chunking import sentence_spans
from compare.embedding import Embedder
from compare.errors import CompareError, ConfigError
from compare.evaluation import synthetic
from compare.evaluation.corpora import CorpusStore, CorpusStores
from compare.evaluation.datasets import Case, Dataset, Suite, suite_relative
from compare.evaluation.replay import Cassette, ReplayServer
from compare.judgement_metrics import (
    judged_pairs,
    position_rows,
    position_scores,
    position_shifts,
    predicted_agreements,
    predicted_differences,
    predicted_omissions,
    set_scores,
    shift_judgement,
)
from compare.metrics import (
    Span,
    citation_support,
    claim_quote_pairs,
    cosine,
    lead_sentences,
    macro_f1,
    quote_validity,
    rouge_l,
    shift_scores,
    shift_views,
    source_coverage,
    span_scores,
)
from compare.settings import Settings
from compare.store import Filters
from compare.types import Comparison, Document

LLM_PREFIXES = ("openai", "openai-compatible", "replay")
Progress = Callable[[str], None]


@dataclass
class Column:
    label: str
    backend: str
    prompt: str | None

    @property
    def is_llm(self) -> bool:
        return parse_backend_spec(self.backend)[0] in LLM_PREFIXES


def backend_label(spec: str) -> str:
    prefix, rest = parse_backend_spec(spec)
    if prefix == "replay":
        return f"replay:{Path(rest).stem}"
    if prefix == "openai-compatible":
        return f"{prefix}:{rest.split('@', 1)[0]}"
    return spec


def make_columns(backends: list[str], prompts: list[str]) -> list[Column]:
    columns: list[Column] = []
    for spec in backends:
        if parse_backend_spec(spec)[0] in LLM_PREFIXES:
            columns += [Column(f"{backend_label(spec)} {prompt}", spec, prompt) for prompt in prompts]
        else:
            columns.append(Column(backend_label(spec), spec, None))
    labels = [c.label for c in columns]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(
            f"two columns would be named {', '.join(duplicates)}", hint="list each backend once"
        )
    return columns


@dataclass
class CaseResult:
    dataset: str
    case: str
    column: str
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    answer: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "details": self.details, "error": self.error, "answer": self.answer}


@dataclass
class ColumnRun:
    column: Column
    resolved: str
    settings: Settings
    info: dict[str, Any] = field(default_factory=dict)
    server: ReplayServer | None = None


@dataclass
class RunOptions:
    backends: list[str]
    prompts: list[str]
    no_cache: bool = False
    record: bool = False
    store_root: Path | None = None


@dataclass
class EvalRun:
    suite: Suite
    columns: list[ColumnRun]
    results: list[CaseResult]
    corpora: list[dict[str, Any]]
    seconds: float
    settings: Settings


# -- columns ---------------------------------------------------------------------------------------------


def _column_settings(settings: Settings, column: Column, no_cache: bool) -> Settings:
    llm = settings.llm.model_copy(update={"cache": settings.llm.cache and not no_cache})
    if column.prompt is not None:
        llm = llm.model_copy(update={"prompt": column.prompt})
    return settings.model_copy(update={"llm": llm})


def _start_column(column: Column, settings: Settings, options: RunOptions, stack: ExitStack) -> ColumnRun:
    run = ColumnRun(column, column.backend, _column_settings(settings, column, options.no_cache))
    prefix, rest = parse_backend_spec(column.backend)
    if prefix == "replay":
        cassette = Cassette.load(Path(rest))
        responder = synthetic.respond if cassette.generator == synthetic.GENERATOR else None
        server = stack.enter_context(ReplayServer(cassette, responder, record=options.record))
        run.server, run.resolved = server, server.spec
        run.info["cassette"] = {
            "path": str(cassette.path),
            "model": cassette.model,
            "generator": cassette.generator,
            "note": cassette.note,
        }
    if column.prompt is not None:
        from compare.analysis.prompts import load_prompt, prompt_directories

        run.info["prompt"] = load_prompt(column.prompt, prompt_directories(settings.llm.prompts_dir)).id
    run.info["settings_hash"] = run.settings.settings_hash()
    return run


# -- one case ----------------------------------------------------------------------------------------------


def _filters(case: Case) -> Filters:
    f = case.inputs.filters
    where = {
        key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in f.where.items()
    }
    return Filters(sources=f.sources, since=f.since, until=f.until, where=where or None)


def _locate(expected: list[tuple[str, str]], documents: dict[str, Document]) -> tuple[list[Span], list[str]]:
    """Expected spans found in the stored (clean) text: exactly, or after whitespace/quote normalisation."""
    located, missing = [], []
    for doc_id, text in expected:
        doc = documents.get(doc_id)
        quote = verify_quote(text, doc) if doc is not None else None
        if quote is None or quote.status == "unverified":
            missing.append(f"{doc_id}: {text[:80]}")
        else:
            located.append((doc_id, quote.char_start, quote.char_end))
    return located, missing


def evaluate(case: Case, comparison: Comparison, corpus: CorpusStore, embedder: Embedder) -> CaseResult:
    """Every metric the case's expected values allow; None where there is nothing to compare with."""
    expected = case.expected
    quotes = comparison.presented_quotes()
    wanted = [(q.doc_id, q.text) for q in expected.quotes_should_overlap]
    lead_ids = [v.documents[0].doc_id for v in comparison.sources if v.documents]
    documents = corpus.get_documents([q.doc_id for q in quotes] + [d for d, _ in wanted] + lead_ids)
    result = CaseResult("", case.name, "")
    m, d = result.metrics, result.details

    validity = quote_validity(comparison, documents)
    m |= {
        "quote_validity": validity.validity,
        "quotes_presented": validity.presented,
        "quotes_verified": validity.verified,
        "quotes_repaired": validity.repaired,
        "quotes_dropped": validity.dropped,
        "quote_slice_mismatches": validity.slice_mismatches,
    }

    support = citation_support(
        [(claim, q.text) for claim, q in claim_quote_pairs(comparison)], embedder.embed
    )
    m |= {
        "citation_support": support.rate,
        "citation_pairs": support.pairs,
        "citation_mean_cosine": support.mean_cosine,
    }

    shown = [v.source for v in comparison.sources]
    m["source_coverage"] = source_coverage(expected.sources, shown)
    d["sources_missing"] = sorted(set(expected.sources) - set(shown))

    _stance(result, case, comparison)
    _shifts(result, case, comparison)
    score_judgements(result, case, comparison)
    _spans(result, quotes, wanted, documents)
    _summary(result, case, comparison, documents, lead_ids, embedder)
    _cost(result, comparison)
    _labels(result, comparison)
    return result


def _stance(result: CaseResult, case: Case, comparison: Comparison) -> None:
    views = {v.source: v for v in comparison.sources}
    rows = [
        (source, label, views[source].stance.label if source in views else "not_addressed")
        for source, label in sorted(case.expected.stances.items())
    ]
    pairs = [(e, p) for _, e, p in rows]
    result.details["stance_pairs"] = [{"source": s, "expected": e, "predicted": p} for s, e, p in rows]
    result.metrics["stance_accuracy"] = sum(e == p for e, p in pairs) / len(pairs) if pairs else None
    result.metrics["stance_macro_f1"] = macro_f1(pairs)


def _shifts(result: CaseResult, case: Case, comparison: Comparison) -> None:
    views = shift_views(comparison)
    scores = shift_scores(case.expected.shifts, views)
    result.metrics |= {
        "shift_recall": scores.recall,
        "shift_ordering": scores.ordering,
        "shifts_expected": scores.expected,
        "shifts_matched": scores.matched,
        "shifts_found": scores.found,
    }
    result.details["shifts_found"] = [
        {
            "source": v.source,
            "before_date": v.before.date,
            "after_date": v.after.date,
            "before": v.before.text[:200],
            "after": v.after.text[:200],
        }
        for v in views
    ]


def score_judgements(result: CaseResult, case: Case, comparison: Comparison) -> None:
    """Positions toward the target and what follows from them; each family only when the case states it."""
    expected = case.expected
    rows = position_rows(expected.positions, comparison)
    scores = position_scores([(r.expected, r.predicted, r.sure) for r in rows])
    result.metrics |= {
        "position_accuracy": scores.accuracy,
        "position_macro_f1": scores.macro_f1,
        "position_sure_precision": scores.sure_precision,
        "position_sure_coverage": scores.sure_coverage,
        "positions_expected": scores.documents,
        "positions_sure": scores.sure,
        "positions_sure_correct": scores.sure_correct,
    }
    result.details["position_pairs"] = [vars(r) for r in rows]
    unjudged = expected.shifting or []
    differences = judged_pairs(predicted_differences(comparison), unjudged)
    _compare_sets(result, "difference", sorted(differences), expected.differences)
    agreements = judged_pairs(predicted_agreements(comparison), unjudged)
    _compare_sets(result, "agreement", sorted(agreements), expected.agreements)
    _compare_sets(result, "omission", sorted(predicted_omissions(comparison)), expected.not_addressed)
    _position_shifts(result, case, comparison)


def _compare_sets(
    result: CaseResult, name: str, predicted: Sequence[Hashable], expected: Sequence[Hashable] | None
) -> None:
    """`<name>_precision`, `<name>_recall` and the counts they pool from; all None when not measured."""
    keys = (
        f"{name}_precision",
        f"{name}_recall",
        f"{name}s_predicted",
        f"{name}s_expected",
        f"{name}s_matched",
    )
    if expected is None:
        result.metrics |= dict.fromkeys(keys)
        return
    wanted = [tuple(sorted(x)) if isinstance(x, tuple | list) else x for x in expected]
    scores = set_scores(predicted, wanted)
    values = (scores.precision, scores.recall, scores.predicted, scores.expected, scores.matched)
    result.metrics |= dict(zip(keys, values, strict=True))
    result.details[f"{name}s"] = {"predicted": list(predicted), "expected": sorted(set(wanted))}


def _position_shifts(result: CaseResult, case: Case, comparison: Comparison) -> None:
    expected = case.expected
    keys = (
        "position_shift_direction",
        "position_shifts_directed",
        "steady_false_shift_rate",
        "steady_sources",
        "steady_shifted",
    )
    if expected.shifting is None:
        _compare_sets(result, "position_shift", [], None)
        result.metrics |= dict.fromkeys(keys)
        return
    shifts = shift_judgement(expected.shifting, expected.steady or [], expected.positions, comparison)
    _compare_sets(result, "position_shift", sorted(position_shifts(comparison)), expected.shifting)
    values = (
        shifts.direction,
        shifts.directed,
        shifts.false_shift_rate,
        shifts.steady,
        shifts.steady_shifted,
    )
    result.metrics |= dict(zip(keys, values, strict=True))


def _spans(
    result: CaseResult, quotes: list[Any], wanted: list[tuple[str, str]], documents: dict[str, Document]
) -> None:
    keys = ("span_precision", "span_recall", "span_base_precision", "span_base_recall")
    if not wanted:
        result.metrics |= dict.fromkeys(keys)
        return
    located, missing = _locate(wanted, documents)
    predicted = [(q.doc_id, q.char_start, q.char_end) for q in quotes]
    docs = sorted({doc_id for doc_id, _, _ in located})
    sentences = [(doc_id, s, e) for doc_id in docs for s, e in sentence_spans(documents[doc_id].text)]
    scores = span_scores(predicted, located, sentences)
    result.metrics |= {
        "span_precision": scores.precision,
        "span_recall": scores.recall,
        "span_base_precision": scores.base_precision,
        "span_base_recall": scores.base_recall,
        "spans_expected": len(wanted),
        "spans_unlocated": len(missing),
        "spans_judged_quotes": scores.predicted,
    }
    result.details["spans_unlocated"] = missing


def _summary(
    result: CaseResult,
    case: Case,
    comparison: Comparison,
    documents: dict[str, Document],
    lead_ids: list[str],
    embedder: Embedder,
) -> None:
    reference = case.expected.reference_summary
    keys = ("rouge_l", "summary_cosine", "lead_rouge_l", "lead_cosine")
    if not reference:
        result.metrics |= dict.fromkeys(keys)
        return
    answer = " ".join(v.summary for v in comparison.sources if v.summary.strip())
    lead = " ".join(lead_sentences(documents[i].text) for i in lead_ids if i in documents)
    result.metrics |= {
        "rouge_l": round(rouge_l(answer, reference).f1, 4),
        "summary_cosine": cosine(embedder.embed, answer, reference),
        "lead_rouge_l": round(rouge_l(lead, reference).f1, 4),
        "lead_cosine": cosine(embedder.embed, lead, reference),
    }


def _cost(result: CaseResult, comparison: Comparison) -> None:
    meta = comparison.meta
    result.metrics |= {
        "tokens_in": meta.tokens_in,
        "tokens_out": meta.tokens_out,
        "cost_usd": meta.cost_usd,
        "latency_s": meta.latency_s,
        "cached_calls": meta.cached_calls,
        "error": 0,
    }


def _labels(result: CaseResult, comparison: Comparison) -> None:
    """The judgement gate's counts: the model's labels read again by the local stance model, and the share it
    contests (None when it read none: an offline column, or no label with a quote)."""
    labels = comparison.meta.labels
    checked, contested = labels.get("checked", 0), labels.get("contested", 0)
    result.metrics |= {
        "labels_checked": checked,
        "labels_confirmed": labels.get("confirmed", 0),
        "labels_contested": contested,
        "contested_rate": round(contested / checked, 4) if checked else None,
    }


def run_case(
    dataset: Dataset, case: Case, column: ColumnRun, engine: Engine, corpus: CorpusStore
) -> CaseResult:
    started = time.perf_counter()
    inputs = case.inputs
    try:
        comparison = engine.compare(
            inputs.question, backend=column.resolved, filters=_filters(case), k=inputs.k, target=inputs.target
        )
        comparison.meta.backend = column.column.backend  # the suite's name, not the replay server's URL
        result = evaluate(case, comparison, corpus, engine.embedder)
    except CompareError as exc:
        return _failed(dataset, case, column, exc.message + (f" ({exc.hint})" if exc.hint else ""), started)
    except Exception as exc:  # a bug in one backend must not stop the matrix: recorded, reported, counted
        return _failed(dataset, case, column, f"{type(exc).__name__}: {exc}", started)
    result.dataset, result.column = dataset.name, column.column.label
    result.answer = comparison.model_dump(mode="json")
    return result


def _failed(dataset: Dataset, case: Case, column: ColumnRun, message: str, started: float) -> CaseResult:
    result = CaseResult(dataset.name, case.name, column.column.label, error=message)
    result.metrics = {"error": 1, "latency_s": round(time.perf_counter() - started, 3)}
    return result


# -- the matrix --------------------------------------------------------------------------------------------


def default_store_root(settings: Settings) -> Path:
    return settings.data_dir / "eval-stores"


def run_suite(
    suite: Suite,
    settings: Settings,
    embedder: Embedder,
    options: RunOptions,
    progress: Progress | None = None,
) -> EvalRun:
    """Every case under every column. Corpora are ingested once (and kept between runs); a failing case is
    recorded with its error and the run goes on."""
    started = time.perf_counter()
    say = progress or (lambda _: None)
    backends = [suite_relative(suite, b) for b in options.backends]
    columns = make_columns(backends, options.prompts)
    stores = CorpusStores(settings, embedder, options.store_root or default_store_root(settings))
    results: list[CaseResult] = []
    total = sum(len(d.cases) for d in suite.datasets) * len(columns)
    with ExitStack() as stack:
        runs = [_start_column(column, settings, options, stack) for column in columns]
        engines: dict[tuple[str, str], Engine] = {}
        for dataset in suite.datasets:
            for case in dataset.cases:
                say(f"corpus for {dataset.name}/{case.name}")
                corpus = stores.for_case(dataset, case)
                for run in runs:
                    key = (corpus.key, run.column.label)
                    if key not in engines:
                        column_settings = run.settings.model_copy(
                            update={"data_dir": corpus.settings.data_dir, "chroma_url": None}
                        )
                        engines[key] = Engine(column_settings, corpus.store, embedder)
                    result = run_case(dataset, case, run, engines[key], corpus)
                    results.append(result)
                    status = "error" if result.error else f"{result.metrics.get('latency_s', 0):.1f}s"
                    say(f"[{len(results)}/{total}] {run.column.label} {dataset.name}/{case.name} {status}")
        for run in runs:
            _finish_column(run, options, results)
    corpora = [
        {
            "key": c.key,
            "origin": c.origin,
            "documents": c.documents,
            "warnings": c.warnings,
            "ingest_seconds": c.seconds,
            "data_dir": str(c.settings.data_dir),
        }
        for c in stores._open.values()
    ]
    return EvalRun(suite, runs, results, corpora, round(time.perf_counter() - started, 2), settings)


def _finish_column(run: ColumnRun, options: RunOptions, results: list[CaseResult]) -> None:
    answers = [r.answer for r in results if r.column == run.column.label and r.answer]
    metas = [a["meta"] for a in answers]
    run.info["models"] = sorted({str(m.get("model")) for m in metas if m.get("model")})
    run.info["prompts"] = sorted({str(m.get("prompt")) for m in metas if m.get("prompt")})
    run.info["settings_hashes"] = sorted({str(m.get("settings_hash")) for m in metas})
    if run.server is not None:
        run.info["replay"] = run.server.stats.as_dict()
        if options.record:
            run.server.cassette.save(keep=run.server.used)
            run.info["replay"]["recorded"] = len(run.server.used)


def package_version() -> str:
    return __version__
