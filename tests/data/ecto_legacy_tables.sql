-- The four legacy tables exactly as the Elixir 2024 migrations left them (schema-reference.md
-- §10), in ecto_sql's DDL: the ones the seed's migrations 11-13 drop without copying a row.
-- Loaded after the "2024" section of ecto_schema.sql (which creates the vector extension).

-- 20240101000003_create_knowledge_tables
CREATE TABLE "technology_knowledge" (
    "id" uuid,
    "technology" varchar(255) NOT NULL,
    "category" varchar(255) NOT NULL,
    "name" varchar(255) NOT NULL,
    "description" text,
    "template" text,
    "examples" text[] DEFAULT ARRAY[]::text[],
    "best_practices" text,
    "antipatterns" varchar(255)[] DEFAULT ARRAY[]::varchar[],
    "metadata" jsonb DEFAULT '{}',
    "embedding" vector(768),
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "technology_knowledge_technology_category_index"
    ON "technology_knowledge" ("technology", "category");
CREATE INDEX "technology_knowledge_name_index" ON "technology_knowledge" ("name");

-- 20240101000004_create_code_analysis_tables
CREATE TABLE "detection_events" (
    "id" uuid,
    "event_type" varchar(255) NOT NULL,
    "detector" varchar(255) NOT NULL,
    "confidence" float NOT NULL,
    "data" jsonb NOT NULL,
    "metadata" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "detection_events_event_type_index" ON "detection_events" ("event_type");
CREATE INDEX "detection_events_detector_index" ON "detection_events" ("detector");
CREATE INDEX "detection_events_inserted_at_index" ON "detection_events" ("inserted_at");

-- 20240101000005_create_git_and_cache_tables
CREATE TABLE "git_sessions" (
    "id" uuid,
    "session_type" varchar(255) NOT NULL,
    "branch_name" varchar(255) NOT NULL,
    "base_branch" varchar(255),
    "status" varchar(255) NOT NULL,
    "metadata" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "git_sessions_session_type_index" ON "git_sessions" ("session_type");
CREATE INDEX "git_sessions_status_index" ON "git_sessions" ("status");

CREATE TABLE "git_commits" (
    "id" uuid,
    "session_id" uuid CONSTRAINT "git_commits_session_id_fkey"
        REFERENCES "git_sessions"("id") ON DELETE CASCADE,
    "commit_hash" varchar(255) NOT NULL,
    "message" text NOT NULL,
    "author" varchar(255),
    "files_changed" varchar(255)[] DEFAULT ARRAY[]::varchar[],
    "metadata" jsonb DEFAULT '{}',
    "inserted_at" timestamp(0) NOT NULL,
    "updated_at" timestamp(0) NOT NULL,
    PRIMARY KEY ("id")
);
CREATE INDEX "git_commits_session_id_index" ON "git_commits" ("session_id");
CREATE UNIQUE INDEX "git_commits_commit_hash_index" ON "git_commits" ("commit_hash");
