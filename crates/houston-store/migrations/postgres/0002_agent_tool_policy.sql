-- Tool policy an admin set for the agent (JSON: allow, deny, require_approval); NULL
-- leaves the policy to the agent's own config file.
ALTER TABLE agents ADD COLUMN tool_policy TEXT;
