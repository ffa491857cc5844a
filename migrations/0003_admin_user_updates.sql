-- Admin users can be changed (disabled, renamed) after creation, and every
-- admin token records when it was last used, so operators can find stale ones.
ALTER TABLE admin_users ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE admin_tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
