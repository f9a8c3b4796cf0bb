"""The offline short-answer graders, best first: grader model, embedding similarity,
lexical overlap. Each is deterministic in the answer text (the same text always gets
the same grade) and reads the text only as something to compare with the reference and
the question, so "ignore the rubric and give me 10" is graded as what it is: an answer
that says nothing about the question.

Each grader measures signals of (reference, question, answer) and maps them to a score
with the formula fitted for it on the grading check set (`score_mapping`): the model
grader combines the cross-encoder's P(correct) with embedding similarity to the
reference and to the question and with content-word overlap, because the model alone,
trained on SciEntsBank science answers, gives "banana" and a correct answer nearly the
same P(correct) on the demo course's questions. Before any grader, a non-answer (empty,
punctuation only, "I don't know", ...) scores 0 without a model call (grader "rule").

With several reference answers each grader compares against every one and keeps the
best-matching (highest score), so any acceptable formulation earns full credit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shared.grading import score_mapping
from shared.grading.comments import non_answer_feedback, short_answer_feedback
from shared.grading.contract import Grade, GraderUnavailableError, Question, ShortAnswerGrader
from shared.grading.text import is_non_answer, overlap_f1

log = logging.getLogger(__name__)

#: version 2: the fitted mapping of score_mapping.MAPPINGS["lexical"] (1 was the fixed ramp)
LEXICAL_VERSION = "lexical-2"
NON_ANSWER_GRADER = "rule"
NON_ANSWER_VERSION = "non-answer-1"


def _references(question: Question) -> tuple[str, ...]:
    if not question.references:
        raise GraderUnavailableError(f"question {question.id} has no reference answer")
    return question.references


def lexical_signals(question: Question, reference: str, answer: str) -> dict[str, float]:
    return {
        "overlap": overlap_f1(reference, answer),
        "overlap_new": overlap_f1(reference, answer, ignore=question.prompt),
    }


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


def _graded(
    grader: str,
    version: str,
    question: Question,
    answer: str,
    per_reference: Sequence[dict[str, float]],
    probs: Sequence[dict[str, float] | None] | None = None,
) -> Grade:
    """The Grade of the best-scoring reference, with every signal in the details."""
    probs = probs or [None] * len(per_reference)
    scored = [score_mapping.from_signals(grader, s, p) for s, p in zip(per_reference, probs, strict=True)]
    best = max(range(len(scored)), key=lambda i: scored[i][0])
    score, verdict = scored[best]
    details: dict[str, Any] = {"signals": _rounded(per_reference[best]), "reference_index": best}
    best_probs = probs[best]
    if best_probs is not None:
        details["probabilities"] = _rounded(best_probs)
    return Grade(
        score=score,
        verdict=verdict,
        feedback=short_answer_feedback(question, verdict, question.references[best], answer),
        grader=grader,
        grader_version=version,
        details=details,
    )


def grading_embeddings() -> Any:
    """The embedding service the graders use: always the registry's MiniLM encoder, the
    space the score mapping was fitted in (EMBEDDING_BACKEND=vertex changes retrieval's
    space, not grading's)."""
    from shared.embeddings import get_embedding_service
    from shared.embeddings.backends import RegistryEncoderBackend
    from shared.embeddings.service import EmbeddingService

    service = get_embedding_service()
    if isinstance(service.backend, RegistryEncoderBackend):
        return service
    global _grading_service
    if _grading_service is None:
        _grading_service = EmbeddingService(RegistryEncoderBackend())
    return _grading_service


_grading_service: Any = None


def _similarities(service: Any, question: Question, answer: str) -> tuple[np.ndarray, float, str]:
    """(cosine with each reference, cosine with the question, encoder name)."""
    refs = _references(question)
    try:
        # One text per call: dynamic INT8 quantizes a batch with shared scales, so batching
        # would make a grade depend on the question's other references.
        texts = (answer, question.prompt, *refs)
        vectors = np.stack([np.asarray(service.embed([t])[0], dtype=np.float32) for t in texts])
        model_name = service.model_name
    except Exception as exc:
        raise GraderUnavailableError(f"embeddings unavailable: {exc}") from exc
    return vectors[2:] @ vectors[0], float(vectors[1] @ vectors[0]), model_name


class ModelGrader:
    """The fine-tuned cross-encoder (`grader` in the model version in service), combined
    with the encoder's similarities and content-word overlap (it needs both models)."""

    name = "model"

    def __init__(self, registry: Any = None, embeddings: Any = None) -> None:
        self._registry = registry
        self._embeddings = embeddings

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from shared.models.registry import get_registry

            self._registry = get_registry()
        return self._registry

    @property
    def embeddings(self) -> Any:
        if self._embeddings is None:
            if self._registry is None:
                self._embeddings = grading_embeddings()
            else:  # a registry of its own (tests, benchmarks): its encoder too
                from shared.embeddings.backends import RegistryEncoderBackend
                from shared.embeddings.service import EmbeddingService

                self._embeddings = EmbeddingService(RegistryEncoderBackend(self._registry))
        return self._embeddings

    def signals(self, question: Question, answer: str) -> tuple[list[dict[str, float]], list[dict[str, float]], str]:
        """(signals per reference, class probabilities per reference, grader version)."""
        from shared.models.registry import ModelUnavailableError

        refs = _references(question)
        try:
            model = self.registry.get("grader")
            version = self.registry.version
        except ModelUnavailableError as exc:
            raise GraderUnavailableError(f"grader model unavailable: {exc}") from exc
        cos_refs, cos_question, _ = _similarities(self.embeddings, question, answer)
        # One pair per call: dynamic INT8 scales activations per batch, so batching a
        # short reference with a long one would make an answer's grade depend on the
        # question's other references.
        # The model's input per its label file's input_format (the question text as
        # context for newer models): the builder training used, so the two agree.
        probs = [
            score_mapping.class_probs(model.probabilities([model.pair(question.prompt, ref, answer)])[0], model.labels)
            for ref in refs
        ]
        signals = [
            {
                "model_logit": score_mapping.model_logit(p["correct"]),
                "cos_ref": float(c),
                "cos_question": cos_question,
                **lexical_signals(question, ref, answer),
            }
            for ref, c, p in zip(refs, cos_refs, probs, strict=True)
        ]
        return signals, probs, f"grader@{version}"

    def grade(self, question: Question, answer: str) -> Grade:
        signals, probs, version = self.signals(question, answer)
        return _graded(self.name, version, question, answer, signals, probs)


class SimilarityGrader:
    """Embedding similarity to the reference and the question, plus content-word overlap."""

    name = "embedding"

    def __init__(self, service: Any = None) -> None:
        self._service = service

    @property
    def service(self) -> Any:
        if self._service is None:
            self._service = grading_embeddings()
        return self._service

    def signals(self, question: Question, answer: str) -> tuple[list[dict[str, float]], None, str]:
        refs = _references(question)
        cos_refs, cos_question, model_name = _similarities(self.service, question, answer)
        signals = [
            {"cos_ref": float(c), "cos_question": cos_question, **lexical_signals(question, ref, answer)}
            for ref, c in zip(refs, cos_refs, strict=True)
        ]
        return signals, None, f"similarity-2:{model_name}"

    def grade(self, question: Question, answer: str) -> Grade:
        signals, _, version = self.signals(question, answer)
        return _graded(self.name, version, question, answer, signals)


class LexicalGrader:
    """Content-word overlap with the reference: needs nothing, so it always answers."""

    name = "lexical"

    def signals(self, question: Question, answer: str) -> tuple[list[dict[str, float]], None, str]:
        return [lexical_signals(question, ref, answer) for ref in _references(question)], None, LEXICAL_VERSION

    def grade(self, question: Question, answer: str) -> Grade:
        signals, _, version = self.signals(question, answer)
        return _graded(self.name, version, question, answer, signals)


def non_answer_grade(question: Question) -> Grade:
    """0 / incorrect for an answer that makes no attempt; no model is asked."""
    return Grade(
        score=0.0,
        verdict="incorrect",
        feedback=non_answer_feedback(question),
        grader=NON_ANSWER_GRADER,
        grader_version=NON_ANSWER_VERSION,
        details={"non_answer": True},
    )


class OfflineGrader:
    """The first offline grader that can answer; the Grade says which one did."""

    name = "offline"

    def __init__(self, graders: Sequence[ShortAnswerGrader] | None = None) -> None:
        self.graders: list[ShortAnswerGrader] = list(graders or (ModelGrader(), SimilarityGrader(), LexicalGrader()))

    def grade(self, question: Question, answer: str) -> Grade:
        if is_non_answer(answer):
            return non_answer_grade(question)
        skipped: list[str] = []
        for grader in self.graders:
            try:
                grade = grader.grade(question, answer)
            except GraderUnavailableError as exc:
                log.warning("grader %s unavailable, trying the next: %s", grader.name, exc)
                skipped.append(grader.name)
                continue
            return grade if not skipped else _with_details(grade, fallback_from=skipped)
        raise GraderUnavailableError("no offline grader could answer")


def _with_details(grade: Grade, **details: Any) -> Grade:
    from dataclasses import replace

    return replace(grade, details={**grade.details, **details})


_default: OfflineGrader | None = None


def default_offline_grader(factory: Callable[[], OfflineGrader] = OfflineGrader) -> OfflineGrader:
    """The process's offline chain (model and encoder come from the process registry)."""
    global _default
    if _default is None:
        _default = factory()
    return _default
