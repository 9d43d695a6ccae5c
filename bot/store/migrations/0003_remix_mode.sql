-- The mode a reply-to-remix uses when the reply has no melody:/style:/continue: prefix.
ALTER TABLE guild_settings ADD COLUMN remix_mode TEXT NOT NULL DEFAULT 'melody'
    CHECK (remix_mode IN ('melody', 'style', 'continuation'));
