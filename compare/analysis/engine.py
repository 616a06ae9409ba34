"""One question in, one Comparison out: retrieve -> fetch stored texts -> backend -> check every quote."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from compare import __version__
from compare.analysis.base import AnalysisRequest, Backend, Estimate, get_backend, question_target
from compare.analysis.judgement_gate import gate_labels
from compare.analysis.offline import OfflineBackend
from compare.analysis.quotes import verify_quote
from compare.analysis.stance_model import Judged, StanceModel, shared_model
from compare.embedding import CachedEmbedder, Embedder
from compare.errors import CompareError
from compare.redact import redact_data
from compare.retrieval import RetrievalSettings, Retrieved, Retriever
from compare.settings import Settings
from compare.store import Filters, Store
from compare.types import ClaimStanceResult, Comparison, Document, Quote


@dataclass
class Engine:
    """Holds the loaded embedder, store and backends, so repeated questions are warm."""

    settings: Settings
    store: Store
    embedder: Embedder
    _backends: dict[str, Backend] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Everything the engine embeds (questions, evidence sentences, claims) goes through one memo.
        if not isinstance(self.embedder, CachedEmbedder):
            self.embedder = CachedEmbedder(self.embedder)

    def backend(
        self, spec: str | None = None, *, api_key: str | None = None, structured_method: str | None = None
    ) -> Backend:
        """The backend for `spec`, kept warm; with `api_key`, a fresh one that holds that key only for this
        call (a key typed into the app is never cached, stored or put in the environment). A
        `structured_method` overrides settings.llm.structured_method (the app's choice)."""
        key = spec or self.settings.backend
        settings = self.effective_settings(structured_method)
        if api_key:
            return get_backend(key, settings, self.embedder, api_key=api_key)
        warm = key if settings is self.settings else f"{key}|{settings.llm.structured_method}"
        if warm not in self._backends:
            self._backends[warm] = get_backend(key, settings, self.embedder)
        return self._backends[warm]

    def effective_settings(self, structured_method: str | None = None) -> Settings:
        if not structured_method or structured_method == self.settings.llm.structured_method:
            return self.settings
        llm = self.settings.llm.model_copy(update={"structured_method": structured_method})
        return self.settings.model_copy(update={"llm": llm})

    def request(
        self,
        question: str,
        *,
        filters: Filters | None = None,
        k: int | None = None,
        target: str | None = None,
    ) -> AnalysisRequest:
        if not question.strip():
            raise CompareError("the question is empty", hint='ask something, e.g. "How did X change?"')
        filters = filters or Filters()
        retriever = Retriever(self.store, self.embedder)
        config = RetrievalSettings(k_per_source=k or self.settings.k_per_source, filters=filters)
        retrieved = retriever.retrieve(question, config)
        if not retrieved.by_source:
            raise CompareError(_no_match_message(self.store, filters), hint=_no_match_hint(filters))
        doc_ids = sorted({d.doc_id for docs in retrieved.by_source.values() for d in docs})
        documents = self.store.get_documents(doc_ids)
        request = AnalysisRequest(
            question,
            target or question_target(question),
            retrieved,
            documents,
            filters,
            target_given=bool(target),
        )
        request.related = partial(self._related_for_claim, request)
        return request

    def _related_for_claim(
        self, request: AnalysisRequest, claim: str, source: str, n: int, skip: set[str]
    ) -> list[Document]:
        """Up to `n` stored documents of `source` closest to `claim`, within the question's filters."""
        scope = replace(request.filters, sources=(source,))
        hits = self.store.search(self.embedder.embed([claim])[0], k=4 * n + len(skip), filters=scope)
        wanted = list(dict.fromkeys(h.doc_id for h in hits if h.doc_id not in skip))[:n]
        found = self.store.get_documents(wanted) if wanted else {}
        request.documents.update(found)
        return [found[d] for d in wanted if d in found]

    def compare(
        self,
        question: str,
        *,
        backend: str | None = None,
        filters: Filters | None = None,
        k: int | None = None,
        target: str | None = None,
        api_key: str | None = None,
        structured_method: str | None = None,
    ) -> Comparison:
        started = time.perf_counter()
        self._forget_vectors()
        request = self.request(question, filters=filters, k=k, target=target)
        chosen = self.backend(backend, api_key=api_key, structured_method=structured_method)
        checked = self._checked(chosen, chosen.compare(request), request)
        meta = checked.meta
        meta.backend = backend or self.settings.backend
        meta.settings_hash = self.effective_settings(structured_method).settings_hash()
        meta.package_version = __version__
        meta.latency_s = round(time.perf_counter() - started, 3)
        meta.retrieval = request.retrieved.stats.model_dump()
        meta.created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        checked.filters = _filters_dict(filters or Filters())
        # One redaction pass over everything shown or saved: a server may echo the key it was sent into an
        # answer, and a backend URL may carry credentials (compare/redact.py).
        return Comparison.model_validate(redact_data(checked.model_dump()))

    def _checked(self, chosen: Backend, comparison: Comparison, request: AnalysisRequest) -> Comparison:
        """The quote gate, for every backend. Around it, for an LLM: the measured judgement layer (unless
        `judgement.on_llm` is off), then the judgement gate on the model's own labels still shown (all of
        them when the judgement layer did not replace its cross-source ones)."""
        llm = not isinstance(chosen, OfflineBackend)
        measured = (
            llm and self.settings.judgement.on_llm and self._add_measured_judgements(comparison, request)
        )
        checked = enforce_quotes(comparison, request)
        if llm and self.settings.judgement.gate_llm_labels:
            gate_labels(checked, request.documents, self.claim_model(), cross_source=not measured)
        return checked

    def _add_measured_judgements(self, comparison: Comparison, request: AnalysisRequest) -> bool:
        """An LLM writes summaries and per-source claims; the labels shown across sources (positions,
        agreements, differences, omissions, shifts) come from the measured judgement layer, as offline.
        False when there was nothing to judge and the LLM's own labels stay."""
        judge = self.backend("offline")
        assert isinstance(judge, OfflineBackend)
        judged = judge.judge(request)
        if judged is None:
            return False
        comparison.target_is_proposition = judged.proposition
        comparison.claims, comparison.answer = judged.claims, judged.answer
        comparison.shifts, comparison.agreements = judged.shifts, judged.agreements
        comparison.differences, comparison.omissions = judged.differences, judged.omissions
        target = next((c for c in judged.claims if c.is_target), None)
        for view in comparison.sources:
            view.position = target.position(view.source) if target is not None else None
        comparison.meta.warnings += judged.warnings
        comparison.meta.judgement_model = judge.model
        return True

    def _forget_vectors(self) -> None:
        """Each question starts from no remembered vectors, so its answer never depends on earlier questions
        (see CachedEmbedder)."""
        if isinstance(self.embedder, CachedEmbedder):
            self.embedder.clear()

    def estimate(self, question: str, *, backend: str | None = None, filters: Filters | None = None,
                 k: int | None = None, api_key: str | None = None, target: str | None = None,
                 structured_method: str | None = None) -> Estimate:  # fmt: skip
        request = self.request(question, filters=filters, k=k, target=target)
        return self.backend(backend, api_key=api_key, structured_method=structured_method).estimate(request)

    def retrieve(self, question: str, filters: Filters | None = None, k: int | None = None) -> Retrieved:
        return self.request(question, filters=filters, k=k).retrieved

    # -- claim-level stance ------------------------------------------------------------------------------

    def claim_model(self) -> StanceModel:
        return shared_model()

    def claim_stance(
        self, claim: str, *, doc_ids: Sequence[str] = (), filters: Filters | None = None, max_docs: int = 10
    ) -> list[ClaimStanceResult]:
        """Each document's stance toward `claim`: the given documents, else the ones most related to it."""
        if not claim.strip():
            raise CompareError("the claim is empty", hint='state a claim, e.g. "The US will send ATACMS"')
        if doc_ids:
            documents = self.store.get_documents(list(doc_ids))
            missing = [doc_id for doc_id in doc_ids if doc_id not in documents]
            if missing:
                raise CompareError(
                    f"unknown document id(s): {', '.join(missing)}", hint="list ids with `ncompare search`"
                )
            ordered = [documents[doc_id] for doc_id in doc_ids]
        else:
            ordered = self._related_documents(claim, filters or Filters(), max_docs)
        return self.claim_stance_pairs([(claim, doc) for doc in ordered])

    def claim_stance_pairs(self, pairs: Sequence[tuple[str, Document]]) -> list[ClaimStanceResult]:
        """Stances for (claim, document) pairs, in the same order, batched through the model once."""
        if not pairs:
            return []
        model = self.claim_model()
        answers = model.judge_many([(claim, doc.text, None) for claim, doc in pairs])
        return [
            _claim_result(claim, doc, answer, model.method)
            for (claim, doc), answer in zip(pairs, answers, strict=True)
        ]

    def _related_documents(self, claim: str, filters: Filters, max_docs: int) -> list[Document]:
        vector = self.embedder.embed([claim])[0]
        hits = self.store.search(vector, k=max_docs * 4, filters=filters)
        doc_ids = list(dict.fromkeys(hit.duplicate_of or hit.doc_id for hit in hits))[:max_docs]
        if not doc_ids:
            raise CompareError(_no_match_message(self.store, filters), hint=_no_match_hint(filters))
        documents = self.store.get_documents(doc_ids)
        return [documents[doc_id] for doc_id in doc_ids if doc_id in documents]


def _claim_result(claim: str, doc: Document, answer: Judged, method: str) -> ClaimStanceResult:
    evidence = None
    if answer.evidence is not None and answer.label != "unrelated":
        start, end = answer.evidence
        evidence = verify_quote(doc.text[start:end], doc, hint_start=start)
    return ClaimStanceResult(
        claim=claim,
        doc_id=doc.id,
        source=doc.source,
        date=doc.date,
        title=doc.title,
        label=answer.label,
        confidence=round(answer.confidence, 4),
        probabilities={label: round(p, 4) for label, p in answer.probabilities.items()},
        evidence=evidence if evidence is not None and evidence.status != "unverified" else None,
        sure=answer.sure,
        method=method,
    )


def enforce_quotes(comparison: Comparison, request: AnalysisRequest) -> Comparison:
    """Last gate: a quote is shown only if its offsets slice exactly its text from the stored document."""
    dropped = 0

    def valid(quote: Quote) -> bool:
        nonlocal dropped
        doc = request.documents.get(quote.doc_id)
        ok = (
            doc is not None
            and quote.status in ("verified", "repaired")
            and doc.text[quote.char_start : quote.char_end] == quote.text
            and bool(quote.text.strip())
        )
        dropped += 0 if ok else 1
        return ok

    for view in comparison.sources:
        view.summary_quotes = [q for q in view.summary_quotes if valid(q)]
        for claim in view.claims:
            claim.quotes = [q for q in claim.quotes if valid(q)]
    comparison.answer = [a for a in comparison.answer if all(valid(q) for q in a.quotes)]
    for judgement in comparison.claims:
        if judgement.origin is not None and not valid(judgement.origin):
            judgement.origin = None
    held = [p for j in comparison.claims for p in j.positions] + [
        v.position for v in comparison.sources if v.position
    ]
    for held_position in {id(p): p for p in held}.values():
        if held_position.quote is not None and not valid(held_position.quote):
            held_position.quote, held_position.sure = None, False
        for dated in held_position.by_date:
            if dated.quote is not None and not valid(dated.quote):
                dated.quote, dated.sure = None, False
    for agreement in comparison.agreements:
        agreement.quotes = [q for q in agreement.quotes if valid(q)]
    for difference in comparison.differences:
        for position in difference.positions:
            position.quotes = [q for q in position.quotes if valid(q)]
    comparison.shifts = [s for s in comparison.shifts if valid(s.before.quote) and valid(s.after.quote)]
    if dropped:
        comparison.meta.quotes["dropped_by_final_check"] = dropped
        comparison.meta.warnings.append(
            f"{dropped} quote(s) failed the final verbatim check and were removed"
        )
    _count_quotes(comparison)
    return comparison


def _count_quotes(comparison: Comparison) -> None:
    quotes = comparison.presented_quotes()
    counts = comparison.meta.quotes
    counts["presented"] = len(quotes)
    counts["presented_verified"] = sum(1 for q in quotes if q.status == "verified")
    counts["presented_repaired"] = sum(1 for q in quotes if q.status == "repaired")


def _filters_dict(filters: Filters) -> dict[str, object]:
    return {
        "sources": list(filters.sources),
        "since": filters.since,
        "until": filters.until,
        "where": filters.where or {},
    }


def _no_match_message(store: Store, filters: Filters) -> str:
    if store.is_empty:
        return "the store is empty"
    if filters.to_chroma() is not None:
        return "no stored passage matches these filters"
    return "no passage matched the question"


def _no_match_hint(filters: Filters) -> str:
    if filters.to_chroma() is not None:
        return "check --source/--since/--until/--where against `ncompare sources`"
    return "add articles with `ncompare ingest PATH`"
