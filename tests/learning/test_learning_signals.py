"""Signals: what enters the review queue, labels checked against the model in service,
the label audit, and one retrain request per crossing of the label threshold."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from learning_helpers import TEST_LABELS, publish_fake_version

from shared.artifacts.store import LocalStore
from shared.learning import signals
from shared.learning.signals import (
    Taxonomy,
    TaxonomyUnavailableError,
    UnknownInteractionError,
    UnknownLabelError,
    count_verified_label,
    label_interaction,
    read_taxonomy,
)

TAXONOMY = Taxonomy(tuple(TEST_LABELS), "v1", "sha-of-v1-weights")


def queue_ids(client, bearer) -> list[str]:
    items = client.get("/api/feedback/review-queue", headers=bearer("root", admin=True)).get_json()["items"]
    return [i["id"] for i in items]


# --- review queue ----------------------------------------------------------------------


def test_seed_rule_is_the_chat_pipelines_threshold():
    from shared.chat.pipeline import HUMAN_REVIEW_BELOW

    assert signals.REVIEW_CONFIDENCE_BELOW == HUMAN_REVIEW_BELOW == 0.60
    assert signals.needs_review(0.59) and not signals.needs_review(0.60) and not signals.needs_review(None)


def test_thumbs_down_enters_the_queue_with_its_reason(client, bearer, interactions, model_store):
    confident = interactions(1, confidence=0.93)[0]
    unsure = interactions(1, confidence=0.41)[0]
    assert queue_ids(client, bearer) == [unsure]

    response = client.post("/api/feedback", json={"interaction_id": confident, "score": -1}, headers=bearer("alice"))
    assert response.status_code == 200 and response.get_json()["feedback"]["needs_review"] is True
    client.post("/api/feedback", json={"interaction_id": unsure, "score": -1}, headers=bearer("alice"))

    items = client.get("/api/feedback/review-queue", headers=bearer("root", admin=True)).get_json()["items"]
    reasons = {i["id"]: i["reasons"] for i in items}
    assert reasons == {confident: ["thumbs_down"], unsure: ["low_confidence", "thumbs_down"]}


def test_thumbs_up_after_down_leaves_the_queue_unless_confidence_keeps_it(client, bearer, interactions, model_store):
    confident = interactions(1, confidence=0.93)[0]
    unsure = interactions(1, confidence=0.41)[0]
    for iid in (confident, unsure):
        client.post("/api/feedback", json={"interaction_id": iid, "score": -1}, headers=bearer("alice"))
        client.post("/api/feedback", json={"interaction_id": iid, "score": 1}, headers=bearer("alice"))
    assert queue_ids(client, bearer) == [unsure]


def test_thumbs_down_on_a_labelled_query_does_not_requeue_it(client, bearer, interactions, model_store):
    iid = interactions(1, confidence=0.93)[0]
    admin = bearer("root", admin=True)
    labelled = client.post("/api/feedback/label", json={"interaction_id": iid, "label": "off_topic"}, headers=admin)
    assert labelled.status_code == 200
    client.post("/api/feedback", json={"interaction_id": iid, "score": -1}, headers=bearer("alice"))
    assert queue_ids(client, bearer) == []


# --- labels ----------------------------------------------------------------------------


def test_unknown_label_is_422_listing_the_valid_ones(client, bearer, interactions, model_store, ldb):
    iid = interactions(1)[0]
    response = client.post(
        "/api/feedback/label",
        json={"interaction_id": iid, "label": "tutor_feedback"},  # a keyword-rules intent, not v1's
        headers=bearer("root", admin=True),
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "unknown_label"
    assert error["details"]["valid_labels"] == TEST_LABELS
    assert all(label in error["message"] for label in TEST_LABELS)
    with ldb.connect() as conn:
        assert conn.execute(sa.text("SELECT human_label FROM interactions")).scalar() is None
        assert conn.execute(sa.text("SELECT count(*) FROM label_events")).scalar() == 0


def test_taxonomy_route_shows_the_model_in_service(client, bearer, model_store):
    body = client.get("/api/feedback/taxonomy", headers=bearer("root", admin=True)).get_json()["taxonomy"]
    assert body["labels"] == TEST_LABELS and body["model_version"] == "v1" and body["source"] == "model"
    assert client.get("/api/feedback/taxonomy", headers=bearer("alice")).status_code == 403


def test_relabelling_is_audited(client, bearer, interactions, model_store, ldb):
    iid = interactions(1)[0]
    ann, bob = bearer("ann", admin=True), bearer("bob", admin=True)
    first = client.post(
        "/api/feedback/label", json={"interaction_id": iid, "label": "debugging_help"}, headers=ann
    ).get_json()["label"]
    assert first["old_label"] is None and first["verified_labels"] == 1
    second = client.post(
        "/api/feedback/label", json={"interaction_id": iid, "label": "practice_quiz"}, headers=bob
    ).get_json()["label"]
    assert second["old_label"] == "debugging_help" and second["changed"] is True
    assert second["verified_labels"] is None  # a relabel is not another verified label
    same = client.post(
        "/api/feedback/label", json={"interaction_id": iid, "label": "practice_quiz"}, headers=bob
    ).get_json()["label"]
    assert same["changed"] is False

    history = client.get(f"/api/feedback/labels/{iid}/history", headers=bearer("root", admin=True)).get_json()
    events = [(e["old_label"], e["new_label"], e["labelled_by"], e["model_version"]) for e in history["events"]]
    assert events == [(None, "debugging_help", "ann", "v1"), ("debugging_help", "practice_quiz", "bob", "v1")]
    assert all(e["labelled_at"] for e in history["events"])
    with ldb.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM label_counters")).scalar() == 1
    unknown = client.get(f"/api/feedback/labels/{uuid.uuid4()}/history", headers=bearer("root", admin=True))
    assert unknown.status_code == 404


def test_label_unknown_interaction_is_404(client, bearer, model_store, ldb):
    response = client.post(
        "/api/feedback/label",
        json={"interaction_id": str(uuid.uuid4()), "label": "off_topic"},
        headers=bearer("root", admin=True),
    )
    assert response.status_code == 404


# --- the taxonomy of the model in service ----------------------------------------------


def test_taxonomy_follows_the_pointer_and_checks_the_manifest(tmp_path):
    store = LocalStore(tmp_path)
    fallback = read_taxonomy(store)  # nothing published: the keyword rules answer
    assert fallback.model_version is None and "tutor_feedback" in fallback.labels

    publish_fake_version(tmp_path, "v1", TEST_LABELS, b"w1")
    v1 = read_taxonomy(store)
    assert v1.labels == tuple(TEST_LABELS) and v1.model_version == "v1"

    publish_fake_version(tmp_path, "v2", [*TEST_LABELS, "career_advice"], b"w2")
    v2 = read_taxonomy(store)
    assert "career_advice" in v2.labels and v2.model_key != v1.model_key

    (tmp_path / "v2" / "intent_labels.json").write_text('{"labels": ["anything"]}')
    with pytest.raises(TaxonomyUnavailableError):
        read_taxonomy(store)


def test_taxonomy_store_outage_is_503(client, bearer, interactions, monkeypatch, tmp_path):
    (tmp_path / "current.json").write_text("{not json")
    monkeypatch.setattr(signals, "_taxonomy", signals.TaxonomyCache(str(tmp_path), ttl_s=0))
    iid = interactions(1)[0]
    response = client.post(
        "/api/feedback/label", json={"interaction_id": iid, "label": "off_topic"}, headers=bearer("root", admin=True)
    )
    assert response.status_code == 503


# --- the label counter -----------------------------------------------------------------


def requests(ldb) -> list[dict]:
    with ldb.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT reason, status, payload FROM retrain_requests WHERE reason = 'labels_threshold' ORDER BY id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def test_exceeding_the_threshold_records_one_request_for_the_intent_model(interactions, ldb):
    ids = interactions(7)
    made = []
    with ldb.begin() as conn:
        for iid in ids:
            made.append(label_interaction(conn, "root", iid, "off_topic", TAXONOMY, retrain_after=3))
    assert [m.verified_labels for m in made] == [1, 2, 3, 4, 5, 6, 7]
    crossings = [m.retrain_request.threshold for m in made if m.retrain_request]
    assert crossings == [3, 6]  # the 4th label exceeds 3, the 7th exceeds 6
    rows = requests(ldb)
    assert [(r["status"], r["payload"]["models"], r["payload"]["trigger"]) for r in rows] == [
        ("pending", ["intent"], "labels")
    ] * 2
    assert rows[0]["payload"]["model_key"] == TAXONOMY.model_key


def test_a_replayed_crossing_records_nothing(ldb):
    with ldb.begin() as conn:
        for _ in range(4):
            count_verified_label(conn, TAXONOMY, every=3)
        # e.g. a counter restored from a backup replays the 4th label
        conn.execute(sa.text("UPDATE label_counters SET value = 3"))
        value, request = count_verified_label(conn, TAXONOMY, every=3)
    assert value == 4 and request is None
    assert len(requests(ldb)) == 1


def test_a_retrained_model_starts_counting_again(interactions, ldb):
    retrained = Taxonomy(TAXONOMY.labels, "v2", "sha-of-v2-weights")
    copied = Taxonomy(TAXONOMY.labels, "v3", TAXONOMY.model_key)  # v3 kept v1's intent weights
    ids = interactions(6)
    with ldb.begin() as conn:
        for iid in ids[:3]:
            label_interaction(conn, "root", iid, "off_topic", TAXONOMY, retrain_after=3)
        fresh = label_interaction(conn, "root", ids[3], "off_topic", retrained, retrain_after=3)
        kept = label_interaction(conn, "root", ids[4], "off_topic", copied, retrain_after=3)
    assert fresh.verified_labels == 1 and fresh.retrain_request is None
    assert kept.verified_labels == 4 and kept.retrain_request is not None


def test_concurrent_labels_cross_exactly_once(interactions, ldb):
    ids = interactions(12)

    def one(iid: str):
        with ldb.begin() as conn:
            return label_interaction(conn, "root", iid, "off_topic", TAXONOMY, retrain_after=10)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, ids))
    assert sorted(r.verified_labels for r in results) == list(range(1, 13))
    assert sum(r.retrain_request is not None for r in results) == 1
    assert len(requests(ldb)) == 1


def test_label_route_publishes_the_crossing_request_after_commit(
    client, bearer, interactions, model_store, ldb, monkeypatch
):
    """Through HTTP, with the default local publisher: the request reaches the retrain
    function in-process (a queued training run) and the row is marked published."""
    from shared.config import get_settings

    settings = get_settings()
    ids = interactions(3)
    admin = bearer("root", admin=True)
    monkeypatch.setattr(settings, "retrain_after_verified_labels", 2)
    bodies = [
        client.post("/api/feedback/label", json={"interaction_id": i, "label": "off_topic"}, headers=admin).get_json()
        for i in ids
    ]
    assert [b["label"]["retrain_request"] is not None for b in bodies] == [False, False, True]
    with ldb.connect() as conn:
        request_id, status = conn.execute(sa.text("SELECT id, status FROM retrain_requests")).one()
        run = conn.execute(sa.text("SELECT idempotency_key, trigger FROM training_runs")).one()
    assert status == "published" and tuple(run) == (f"retrain-request:{request_id}", "labels")


def test_domain_errors_carry_no_http(interactions, ldb):
    with ldb.begin() as conn:
        with pytest.raises(UnknownLabelError) as info:
            label_interaction(conn, "root", interactions(1)[0], "nope", TAXONOMY)
        assert info.value.kind == "invalid" and info.value.valid_labels == TEST_LABELS
        with pytest.raises(UnknownInteractionError):
            label_interaction(conn, "root", uuid.uuid4(), "off_topic", TAXONOMY)
    import shared.learning.signals as module

    assert "shared.http" not in open(module.__file__).read()
