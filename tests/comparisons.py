"""Comparisons built by hand for the view and renderer tests: a judged one (positions, an unsure position,
opposed and weaker differences, an omission, position/reported/tone shifts, an answer) and stored documents."""

from __future__ import annotations

from compare.types import (
    Agreement,
    AnswerSentence,
    ClaimJudgement,
    Comparison,
    ComparisonMeta,
    Difference,
    DocRef,
    Document,
    Omission,
    Position,
    Quote,
    Shift,
    ShiftPoint,
    SourcePosition,
    SourceView,
    Stance,
)

TARGET = "The US should send longer-range missiles to Ukraine"
DOD, WAPO, BLOG = "department_of_defense", "wapo", "blog_x"
TEXTS = {
    "dod-jan": "Officials met in January.\nThe Department supports sending longer-range missiles to Ukraine. "
    "Aid to Ukraine will continue for as long as it takes.",
    "dod-mar": "In March the tone changed.\nThe Department no longer supports sending longer-range missiles. "
    "Aid to Ukraine will continue.",
    "wapo-feb": "Analysis.\nSending longer-range missiles would be a mistake, the editors argue. Aid to Ukraine "
    "will continue, officials say. Biden reversed his policy on missiles, a shift from refusal to approval.",
    "blog-feb": "A post about the weather in Kyiv and nothing about missiles.",
}


def documents() -> dict[str, Document]:
    meta = {
        "dod-jan": (DOD, "U.S. Department of Defense", "2024-01-05"),
        "dod-mar": (DOD, "U.S. Department of Defense", "2024-03-05"),
        "wapo-feb": (WAPO, "The Washington Post", "2024-02-10"),
        "blog-feb": (BLOG, None, "2024-02-01"),
    }
    return {
        doc_id: Document(id=doc_id, source=source, outlet=outlet, title=f"Title of {doc_id}", date=day,
                         url=f"https://example.org/{doc_id}", text=TEXTS[doc_id])
        for doc_id, (source, outlet, day) in meta.items()
    }  # fmt: skip


def quote(doc_id: str, needle: str, status: str = "verified") -> Quote:
    doc = documents()[doc_id]
    start = doc.text.index(needle)
    return Quote(doc_id=doc_id, source=doc.source, date=doc.date, char_start=start,
                 char_end=start + len(needle), text=needle, status=status)  # type: ignore[arg-type]  # fmt: skip


Q_DOD_BACKS = quote("dod-jan", "The Department supports sending longer-range missiles to Ukraine.")
Q_DOD_DISPUTES = quote("dod-mar", "The Department no longer supports sending longer-range missiles.")
Q_DOD_AID = quote("dod-jan", "Aid to Ukraine will continue for as long as it takes.")
Q_WAPO_DISPUTES = quote("wapo-feb", "Sending longer-range missiles would be a mistake, the editors argue.")
Q_WAPO_AID = quote("wapo-feb", "Aid to Ukraine will continue, officials say.")
Q_WAPO_REVERSED = quote(
    "wapo-feb", "Biden reversed his policy on missiles, a shift from refusal to approval."
)
Q_BLOG = quote("blog-feb", "A post about the weather in Kyiv and nothing about missiles.")


def _position(
    source: str, label: str, confidence: float, q: Quote | None = None, **extra: object
) -> SourcePosition:
    return SourcePosition(source=source, label=label, confidence=confidence, quote=q,  # type: ignore[arg-type]
                          doc_id=q.doc_id if q else None, date=q.date if q else None, **extra)  # type: ignore[arg-type]  # fmt: skip


def judged_comparison() -> Comparison:
    target_positions = [
        _position(DOD, "backs", 0.86, Q_DOD_BACKS),
        _position(WAPO, "disputes", 0.74, Q_WAPO_DISPUTES),
        _position(BLOG, "reports", 0.41, Q_BLOG, sure=False),
    ]
    claims = [
        ClaimJudgement(id="c1", text="Aid to Ukraine will continue", origin=Q_DOD_AID, positions=[
            _position(DOD, "backs", 0.9, Q_DOD_AID), _position(WAPO, "backs", 0.8, Q_WAPO_AID),
            _position(BLOG, "not_addressed", 0.88, None, checked_documents=3)]),
        ClaimJudgement(id="target", text=TARGET, is_target=True, positions=target_positions),
    ]  # fmt: skip
    views = [
        SourceView(source=DOD, outlet="U.S. Department of Defense", first_date="2024-01-05",
                   last_date="2024-03-05", documents=[DocRef(doc_id="dod-jan"), DocRef(doc_id="dod-mar")],
                   summary=Q_DOD_BACKS.text, summary_quotes=[Q_DOD_BACKS],
                   stance=Stance(label="positive", target=TARGET, confidence=0.62), position=target_positions[0]),
        SourceView(source=WAPO, first_date="2024-02-10", last_date="2024-02-10",
                   documents=[DocRef(doc_id="wapo-feb")], summary="The editors oppose the missiles.",
                   summary_quotes=[Q_WAPO_DISPUTES],
                   stance=Stance(label="negative", target=TARGET, confidence=0.55), position=target_positions[1]),
        SourceView(source=BLOG, first_date="2024-02-01", last_date="2024-02-01",
                   documents=[DocRef(doc_id="blog-feb")], summary=Q_BLOG.text, summary_quotes=[Q_BLOG],
                   stance=Stance(label="neutral", target=TARGET, confidence=0.3, low_confidence=True),
                   position=target_positions[2]),
    ]  # fmt: skip
    shifts = [
        Shift(source=DOD, topic="missiles", description="positive -> negative", score=0.3,
              before=ShiftPoint(date="2024-01-05", stance="positive", quote=Q_DOD_BACKS),
              after=ShiftPoint(date="2024-03-05", stance="negative", quote=Q_DOD_DISPUTES)),
        Shift(source=DOD, topic="missiles", description="backs -> disputes", score=0.81, kind="position",
              claim_id="target", before=ShiftPoint(date="2024-01-05", stance="backs", quote=Q_DOD_BACKS),
              after=ShiftPoint(date="2024-03-05", stance="disputes", quote=Q_DOD_DISPUTES)),
        Shift(source=WAPO, topic="missiles", description="reported reversal", score=0.9, kind="reported",
              cues=["reversed"], before=ShiftPoint(date=None, stance="reports", quote=Q_WAPO_DISPUTES),
              after=ShiftPoint(date="2024-02-10", stance="reports", quote=Q_WAPO_REVERSED)),
    ]  # fmt: skip
    return Comparison(
        question="Should the US send longer-range missiles to Ukraine?",
        target=TARGET,
        target_is_proposition=True,
        answer=[
            AnswerSentence(text="The Department of Defense backed sending the missiles; The Washington Post "
                                "disputed it.", quotes=[Q_DOD_BACKS, Q_WAPO_DISPUTES]),
            AnswerSentence(text="Both say aid to Ukraine will continue.", quotes=[Q_DOD_AID, Q_WAPO_AID]),
        ],
        claims=claims,
        sources=views,
        shifts=shifts,
        agreements=[Agreement(claim="Aid to Ukraine will continue", sources=[DOD, WAPO],
                              quotes=[Q_DOD_AID, Q_WAPO_AID], claim_id="c1", confidence=0.8)],
        differences=[
            Difference(claim="Aid to Ukraine will continue", claim_id="c1", strength="weak", confidence=0.5,
                       positions=[Position(source=DOD, position="backs", quotes=[Q_DOD_AID], confidence=0.9),
                                  Position(source=BLOG, position="reports", quotes=[Q_BLOG], confidence=0.6)]),
            Difference(claim=TARGET, claim_id="target", strength="strong", confidence=0.7,
                       positions=[Position(source=DOD, position="backs", quotes=[Q_DOD_BACKS], confidence=0.86),
                                  Position(source=WAPO, position="disputes", quotes=[Q_WAPO_DISPUTES],
                                           confidence=0.74)]),
        ],
        omissions=[Omission(claim="Aid to Ukraine will continue", claim_id="c1", reported_by=[DOD, WAPO],
                            not_reported_by=[BLOG], confidence=0.7)],
        meta=ComparisonMeta(backend="offline", settings_hash="abc123", package_version="0.1.0",
                            created_at="2026-01-02T03:04:05Z",
                            quotes={"presented": 9, "presented_verified": 9, "presented_repaired": 0}),
    )  # fmt: skip
