-- cognitive-core, step 2 of the database rights: run as the migrator (the owner of the
-- schema objects) after every `python -m shared.db.migrate upgrade`. Idempotent.
GRANT USAGE ON SCHEMA public TO cognitive_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO cognitive_runtime;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO cognitive_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO cognitive_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO cognitive_runtime;
