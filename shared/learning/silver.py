"""Silver labels: an LLM grades past, unlabelled interactions into a silver-standard set.

    python -m shared.learning.silver [--limit 200]

For each unlabelled interaction without a silver label of this prompt version (newest
first, at most `limit`):

1. the query is **redacted** exactly as the dataset export redacts it
   (`shared.learning.datasets.redact`) and sent alone: no user, session, reply, topic
   or model output goes to the provider;
2. the LLM router (`generate_json`: the configured providers, retries, breakers, the
   generation log) answers a schema-validated JSON object `{"label", "confidence"}`
   whose label must be an intent of the **taxonomy of the intent model in service**
   (`signals.current_taxonomy`): the schema's enum is that taxonomy, so an answer outside
   it is re-asked, then refused;
3. the answer is stored in `silver_labels`, apart from human labels (provider, model,
   prompt version, confidence, the taxonomy's version, the model's own intent then, and
   whether they agree);
4. where the silver label and the model in service **disagree**, the interaction is
   queued for a human (`needs_review`; the review queue says `silver_disagrees`).

The offline provider cannot grade (it never invents a structured answer): with only the
offline provider configured the job does nothing and says so. Silver labels go into the
dataset export (table `silver_labels`), and the training job trains on them with a lower
weight than human labels, in its training part only (docs/learning.md).

The nightly tick runs this before its export (`SILVER_LABELS_PER_NIGHT`, 0 = off), within
`SILVER_LABELS_BUDGET_S` (240 s) so the export and the outbox sweep still fit in the
function's timeout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, create_model

from shared.learning.datasets import redact
from shared.learning.signals import Taxonomy, current_taxonomy
from shared.llm import LLMRouter, LLMUnavailableError, Prompt, log_failure, log_generation

log = logging.getLogger(__name__)

#: names the prompt below; bump it when the prompt changes (a new version relabels)
PROMPT_VERSION = "silver-intent-v1"
TASK = "silver_label"
#: consecutive failed interactions after which the run stops (every provider is down)
MAX_CONSECUTIVE_FAILURES = 5

SYSTEM = """You label what a student wants from a programming tutor.
Choose exactly one intent from this list for the student's message:
{labels}
The message comes from a learning platform; personal data was replaced by <email>,
<url> or <number>. Judge only the message. Give your confidence in [0, 1]: 0.9 or more
only when no other intent is plausible."""


class SilverAnswer(BaseModel):
    label: str
    confidence: float = Field(ge=0.0, le=1.0)


def answer_schema(taxonomy: Taxonomy) -> type[SilverAnswer]:
    """The answer's schema with the label restricted to the taxonomy (an enum the
    provider sees and the router validates)."""
    label_type: Any = Literal[tuple(taxonomy.labels)]
    return create_model("SilverIntentAnswer", __base__=SilverAnswer, label=(label_type, ...))


def prompt_for(text: str, taxonomy: Taxonomy) -> Prompt:
    return Prompt.simple(SYSTEM.format(labels="\n".join(f"- {lab}" for lab in taxonomy.labels)), text, temperature=0)


@dataclass
class SilverReport:
    """What one labelling pass did (logged, printed by the CLI, part of the nightly report)."""

    prompt_version: str = PROMPT_VERSION
    taxonomy_version: str | None = None
    candidates: int = 0
    labelled: int = 0
    disagreements: int = 0
    failed: int = 0
    skipped: str | None = None
    providers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def graders(router: LLMRouter) -> list[str]:
    """The providers that can grade: every one but the offline provider."""
    return [name for name in router.order if name != "offline"]


def candidates(conn: sa.Connection, limit: int, prompt_version: str = PROMPT_VERSION) -> list[sa.Row]:
    """Unlabelled interactions with no silver label of this prompt version, newest first."""
    return list(
        conn.execute(
            sa.text(
                """SELECT i.id, i.query, i.intent FROM interactions i
                    WHERE i.human_label IS NULL AND i.query <> ''
                      AND NOT EXISTS (SELECT 1 FROM silver_labels s
                                       WHERE s.interaction_id = i.id AND s.prompt_version = :pv)
                    ORDER BY i.created_at DESC, i.id
                    LIMIT :limit"""
            ),
            {"pv": prompt_version, "limit": limit},
        )
    )


def label_silver(
    engine: sa.Engine,
    router: LLMRouter,
    *,
    limit: int = 200,
    taxonomy: Taxonomy | None = None,
    budget_s: float | None = None,
) -> SilverReport:
    """One labelling pass (see the module docstring). `budget_s` bounds its wall time (no
    new call starts past it): the nightly function must still export and publish within
    its own timeout."""
    started = time.monotonic()
    report = SilverReport(providers=graders(router))
    if not report.providers:
        report.skipped = "only the offline provider is configured: it cannot grade, no silver labels were made"
        log.info("silver labels skipped", extra={"silver": report.as_dict()})
        return report
    taxonomy = taxonomy or current_taxonomy()
    report.taxonomy_version = taxonomy.model_version
    schema = answer_schema(taxonomy)
    with engine.connect() as conn:
        rows = candidates(conn, limit)
    report.candidates = len(rows)
    streak = 0
    for row in rows:
        if budget_s is not None and time.monotonic() - started >= budget_s:
            report.skipped = (
                f"time budget of {budget_s:g} s used: {report.candidates - report.labelled - report.failed} left"
            )
            break
        text = redact(row.query) or ""
        try:
            generation = router.generate_json(TASK, prompt_for(text, taxonomy), schema)
        except LLMUnavailableError as exc:  # every provider failed, or answered outside the schema
            report.failed += 1
            streak += 1
            with engine.begin() as conn:
                log_failure(conn, exc, interaction_id=str(row.id))
            if streak >= MAX_CONSECUTIVE_FAILURES:
                report.skipped = f"stopped after {streak} failures in a row: {exc}"[:300]
                break
            continue
        streak = 0
        answer: SilverAnswer = generation.parsed
        agrees = None if row.intent is None else answer.label == row.intent
        with engine.begin() as conn:
            log_generation(conn, generation, interaction_id=str(row.id))
            inserted = conn.execute(
                sa.text(
                    """INSERT INTO silver_labels (interaction_id, label, confidence, provider, llm_model,
                                                  prompt_version, taxonomy_version, model_intent, agrees)
                       VALUES (:id, :label, :confidence, :provider, :model, :pv, :tv, :intent, :agrees)
                       ON CONFLICT (interaction_id, prompt_version) DO NOTHING
                       RETURNING id"""
                ),
                {
                    "id": str(row.id),
                    "label": answer.label,
                    "confidence": answer.confidence,
                    "provider": generation.provider,
                    "model": generation.model,
                    "pv": PROMPT_VERSION,
                    "tv": taxonomy.model_version,
                    "intent": row.intent,
                    "agrees": agrees,
                },
            ).scalar()
            if inserted is None:  # a concurrent pass labelled it first
                continue
            report.labelled += 1
            if agrees is False:
                report.disagreements += 1
                conn.execute(
                    sa.text("UPDATE interactions SET needs_review = true WHERE id = :id AND human_label IS NULL"),
                    {"id": str(row.id)},
                )
    log.info("silver labels", extra={"silver": report.as_dict()})
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.learning.silver", description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=200, help="interactions to grade at most (default 200)")
    args = parser.parse_args(argv)
    from shared.db import get_engine
    from shared.llm import get_router

    report = label_silver(get_engine(), get_router(), limit=args.limit)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
