"""Initial schema: the system of record DESIGN.md describes.

Written as plain SQL so it reads like the database it creates. Ids that come
from outside (Firebase uids, curriculum slugs, knowledge node ids from the legacy
store) are text; rows the system creates get UUIDs or bigserials.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EMBEDDING_DIM = 384

UPGRADE = f"""
CREATE EXTENSION IF NOT EXISTS vector;

-- people ---------------------------------------------------------------------
CREATE TABLE users (
    id              text PRIMARY KEY,                 -- Firebase uid
    email           text,
    display_name    text,
    role            text NOT NULL DEFAULT 'student' CHECK (role IN ('student', 'admin')),
    level           text CHECK (level IN ('beginner', 'intermediate', 'advanced')),
    learning_style  text CHECK (learning_style IN ('visual', 'verbal', 'examples', 'step_by_step')),
    preferences     jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- curriculum -----------------------------------------------------------------
CREATE TABLE courses (
    id           text PRIMARY KEY,
    title        text NOT NULL,
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE topics (
    id             text PRIMARY KEY,
    course_id      text NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    title          text NOT NULL,
    description    text NOT NULL DEFAULT '',
    position       integer NOT NULL DEFAULT 0,
    prerequisites  text[] NOT NULL DEFAULT '{{}}',
    -- Bayesian Knowledge Tracing parameters of this topic (prior, learn, slip, guess)
    bkt_p_init     real NOT NULL DEFAULT 0.2  CHECK (bkt_p_init  BETWEEN 0 AND 1),
    bkt_p_learn    real NOT NULL DEFAULT 0.15 CHECK (bkt_p_learn BETWEEN 0 AND 1),
    bkt_p_slip     real NOT NULL DEFAULT 0.1  CHECK (bkt_p_slip  BETWEEN 0 AND 0.5),
    bkt_p_guess    real NOT NULL DEFAULT 0.2  CHECK (bkt_p_guess BETWEEN 0 AND 0.5),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX topics_course_idx ON topics (course_id, position);

CREATE TABLE knowledge_nodes (
    id               text PRIMARY KEY,                -- source id, plus '#n' for chunk n > 0
    source_id        text NOT NULL,                   -- id of the node in the legacy store
    chunk_index      integer NOT NULL DEFAULT 0,
    topic_id         text REFERENCES topics(id) ON DELETE SET NULL,
    title            text NOT NULL,
    content          text NOT NULL,
    kind             text NOT NULL DEFAULT 'explanation',
    difficulty       smallint CHECK (difficulty BETWEEN 1 AND 5),
    content_hash     text NOT NULL,                   -- sha256 of what was embedded
    embedding        vector({EMBEDDING_DIM}),
    embedding_model  text,                            -- model (and version) that made the vector
    search_tsv       tsvector GENERATED ALWAYS AS (
                        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
                        setweight(to_tsvector('english', coalesce(content, '')), 'B')
                     ) STORED,
    metadata         jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_id, chunk_index)
);
CREATE INDEX knowledge_nodes_embedding_hnsw ON knowledge_nodes
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX knowledge_nodes_search_tsv ON knowledge_nodes USING gin (search_tsv);
CREATE INDEX knowledge_nodes_topic_idx ON knowledge_nodes (topic_id);

CREATE TABLE questions (
    id                text PRIMARY KEY,
    topic_id          text NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('mcq', 'short_answer')),
    prompt            text NOT NULL,
    options           jsonb,                          -- MCQ: list of option strings
    correct_option    integer,                        -- MCQ: index into options
    reference_answer  text,                           -- short answer: the model answer
    rubric            text,
    explanation       text,
    difficulty        smallint NOT NULL DEFAULT 2 CHECK (difficulty BETWEEN 1 AND 5),
    max_score         integer NOT NULL DEFAULT 10,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (kind = 'mcq' AND jsonb_typeof(options) = 'array' AND correct_option IS NOT NULL
             AND correct_option >= 0 AND correct_option < jsonb_array_length(options))
        OR (kind = 'short_answer' AND reference_answer IS NOT NULL)
    )
);
CREATE INDEX questions_topic_idx ON questions (topic_id, difficulty);

-- learning state ---------------------------------------------------------------
CREATE TABLE task_attempts (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    question_id         text REFERENCES questions(id) ON DELETE SET NULL,
    topic_id            text NOT NULL REFERENCES topics(id),
    difficulty          smallint NOT NULL DEFAULT 2 CHECK (difficulty BETWEEN 1 AND 5),
    status              text NOT NULL DEFAULT 'predicted' CHECK (status IN ('predicted', 'completed')),
    predicted_correct   real CHECK (predicted_correct BETWEEN 0 AND 1),
    predicted_seconds   real CHECK (predicted_seconds >= 0),
    predictor           text,                         -- which model answered (network, irt, default)
    predictor_version   text,
    answer              text,
    correct             boolean,
    score               real CHECK (score BETWEEN 0 AND 10),
    verdict             text CHECK (verdict IN ('correct', 'partially_correct', 'incorrect', 'contradictory')),
    feedback            text,
    grader              text,
    grader_version      text,
    time_seconds        real CHECK (time_seconds >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz
);
CREATE INDEX task_attempts_user_idx ON task_attempts (user_id, completed_at DESC);
CREATE INDEX task_attempts_user_topic_idx ON task_attempts (user_id, topic_id, completed_at DESC);

CREATE TABLE mastery_state (
    user_id      text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    topic_id     text NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
    p_mastery    real NOT NULL CHECK (p_mastery BETWEEN 0 AND 1),
    n_updates    integer NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, topic_id)
);

CREATE TABLE student_progress (
    user_id          text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    topic_id         text NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
    tasks_completed  integer NOT NULL DEFAULT 0,
    tasks_correct    integer NOT NULL DEFAULT 0,
    total_seconds    double precision NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'in_progress'
                         CHECK (status IN ('not_started', 'in_progress', 'mastered')),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, topic_id)
);

-- conversations ----------------------------------------------------------------
CREATE TABLE chat_sessions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    topic_id         text REFERENCES topics(id) ON DELETE SET NULL,
    title            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_message_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_sessions_user_idx ON chat_sessions (user_id, last_message_at DESC);

CREATE TABLE interactions (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id         text NOT NULL,
    user_id            text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id         uuid REFERENCES chat_sessions(id) ON DELETE SET NULL,
    kind               text NOT NULL DEFAULT 'chat',  -- chat, explanation, quiz
    query              text NOT NULL,
    topic_id           text REFERENCES topics(id) ON DELETE SET NULL,
    intent             text,
    intent_probs       jsonb,
    intent_confidence  real,
    intent_source      text,                          -- model or keyword fallback
    confusion_score    real,
    is_confused        boolean,
    mastery            real,
    retrieved_node_ids text[] NOT NULL DEFAULT '{{}}',
    prompt_key         text,
    provider           text,
    llm_model          text,
    model_versions     jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    reply              text,
    tokens_in          integer,
    tokens_out         integer,
    latency_ms         real,
    timings_ms         jsonb,
    needs_review       boolean NOT NULL DEFAULT false, -- low confidence: queue for a human label
    feedback_score     smallint CHECK (feedback_score IN (-1, 1)),
    feedback_comment   text,
    feedback_at        timestamptz,
    human_label        text,
    labelled_by        text REFERENCES users(id) ON DELETE SET NULL,
    labelled_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX interactions_user_idx ON interactions (user_id, created_at DESC);
CREATE INDEX interactions_review_idx ON interactions (created_at)
    WHERE needs_review AND human_label IS NULL;

CREATE TABLE chat_messages (
    id              bigserial PRIMARY KEY,
    session_id      uuid NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    embedding       vector({EMBEDDING_DIM}),          -- user messages: input to confusion detection
    interaction_id  uuid REFERENCES interactions(id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, created_at DESC);

CREATE TABLE generation_log (
    id              bigserial PRIMARY KEY,
    request_id      text,
    interaction_id  uuid REFERENCES interactions(id) ON DELETE SET NULL,
    task            text NOT NULL,                    -- chat, explanation, quiz, grading, ...
    provider        text NOT NULL,
    model           text NOT NULL,
    prompt          text NOT NULL,
    raw_response    text,
    status          text NOT NULL CHECK (status IN ('ok', 'error', 'fallback')),
    error           text,
    tokens_in       integer,
    tokens_out      integer,
    cost_usd        numeric(12, 6),
    latency_ms      real,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX generation_log_created_idx ON generation_log (created_at);

-- the learning loop --------------------------------------------------------------
CREATE TABLE model_versions (
    version          text PRIMARY KEY,                -- v1, v2, ...
    parent_version   text REFERENCES model_versions(version),
    status           text NOT NULL DEFAULT 'published'
                         CHECK (status IN ('published', 'current', 'retired', 'rejected')),
    manifest         jsonb NOT NULL,
    metrics          jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    activated_at     timestamptz
);

CREATE TABLE training_runs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key   text NOT NULL UNIQUE,           -- Pub/Sub message id: at-least-once delivery
    trigger           text NOT NULL,                  -- labels, tasks, schedule, manual
    status            text NOT NULL DEFAULT 'queued'
                          CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'rejected')),
    params            jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    data_snapshot     jsonb,
    metrics           jsonb,
    gate              jsonb,                          -- the evaluation gate's decision and reasons
    produced_version  text REFERENCES model_versions(version),
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz
);

CREATE TABLE retrain_requests (
    id            bigserial PRIMARY KEY,
    reason        text NOT NULL,                      -- tasks_threshold, labels_threshold, schedule
    payload       jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    message_id    text
);
CREATE INDEX retrain_requests_pending_idx ON retrain_requests (created_at) WHERE status = 'pending';
"""

DOWNGRADE = """
DROP TABLE IF EXISTS retrain_requests, training_runs, model_versions, generation_log,
    chat_messages, interactions, chat_sessions, student_progress, mastery_state,
    task_attempts, questions, knowledge_nodes, topics, courses, users CASCADE;
"""


def _statements(script: str) -> list[str]:
    # pg8000 sends each statement as a prepared statement: one at a time.
    return [s.strip() for s in script.split(";\n") if s.strip()]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
