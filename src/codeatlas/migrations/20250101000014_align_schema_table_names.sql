-- The seed's migration 14 (align_schema_table_names). In the seed's version order every one
-- of its guards is false once 11-13 ran, so it does nothing; codeatlas ships it as the same
-- guarded no-op so that versions line up with a ledger copied from the Elixir side. Its
-- destructive paths (dropping detection_events.data and git_commits) are deliberately not
-- reproduced: 11-13 above already carried those rows forward.

-- migrate:up
DO $$
BEGIN
    IF to_regclass('detection_events') IS NOT NULL OR to_regclass('git_sessions') IS NOT NULL
       OR to_regclass('git_commits') IS NOT NULL
       OR to_regclass('technology_knowledge') IS NOT NULL THEN
        RAISE NOTICE 'align_schema_table_names: legacy tables exist again; left untouched '
                     '(run codeatlas doctor)';
    ELSE
        RAISE NOTICE 'align_schema_table_names: nothing to align';
    END IF;
END
$$;

-- migrate:down
DO $$ BEGIN RAISE NOTICE 'align_schema_table_names: nothing to undo'; END $$;
