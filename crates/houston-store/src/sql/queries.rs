//! The queries behind every [`crate::Store`] method, written once for both databases.

/// Implements [`crate::Store`] for a type with a `pool` field of any sqlx pool whose database
/// decodes text, `i64` and `bool` columns.
macro_rules! impl_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::Store for $store {
            async fn ping(&self) -> crate::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_workspace(&self, slug: &str, name: &str) -> crate::StoreResult<crate::Workspace> {
                let row: crate::sql::rows::WorkspaceRow = sqlx::query_as(
                    "INSERT INTO workspaces (id, slug, name, created_at) VALUES ($1, $2, $3, $4) RETURNING *",
                )
                .bind(houston_protocol::WorkspaceId::generate().as_str())
                .bind(slug)
                .bind(name)
                .bind(crate::sql::rows::now_ms())
                .fetch_one(&self.pool)
                .await?;
                row.into_record()
            }

            async fn get_workspace(&self, id: &houston_protocol::WorkspaceId) -> crate::StoreResult<Option<crate::Workspace>> {
                let row: Option<crate::sql::rows::WorkspaceRow> =
                    sqlx::query_as("SELECT * FROM workspaces WHERE id = $1").bind(id.as_str()).fetch_optional(&self.pool).await?;
                row.map(crate::sql::rows::WorkspaceRow::into_record).transpose()
            }

            async fn get_workspace_by_slug(&self, slug: &str) -> crate::StoreResult<Option<crate::Workspace>> {
                let row: Option<crate::sql::rows::WorkspaceRow> =
                    sqlx::query_as("SELECT * FROM workspaces WHERE slug = $1").bind(slug).fetch_optional(&self.pool).await?;
                row.map(crate::sql::rows::WorkspaceRow::into_record).transpose()
            }

            async fn create_user(&self, user: crate::NewUser) -> crate::StoreResult<crate::User> {
                let row: crate::sql::rows::UserRow = sqlx::query_as(
                    "INSERT INTO users (id, email, name, password_hash, external_issuer, external_subject, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                )
                .bind(houston_protocol::UserId::generate().as_str())
                .bind(user.email.map(|email| email.to_lowercase()))
                .bind(user.name)
                .bind(user.password_hash)
                .bind(user.external_issuer)
                .bind(user.external_subject)
                .bind(crate::sql::rows::now_ms())
                .fetch_one(&self.pool)
                .await?;
                row.into_record()
            }

            async fn get_user(&self, id: &houston_protocol::UserId) -> crate::StoreResult<Option<crate::User>> {
                let row: Option<crate::sql::rows::UserRow> =
                    sqlx::query_as("SELECT * FROM users WHERE id = $1").bind(id.as_str()).fetch_optional(&self.pool).await?;
                row.map(crate::sql::rows::UserRow::into_record).transpose()
            }

            async fn get_user_by_email(&self, email: &str) -> crate::StoreResult<Option<crate::User>> {
                let row: Option<crate::sql::rows::UserRow> = sqlx::query_as("SELECT * FROM users WHERE email = $1")
                    .bind(email.to_lowercase())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(crate::sql::rows::UserRow::into_record).transpose()
            }

            async fn upsert_external_user(
                &self,
                issuer: &str,
                subject: &str,
                email: Option<&str>,
                name: &str,
            ) -> crate::StoreResult<crate::User> {
                // The email is stored only while no other user has it, so an external issuer
                // can never take over an existing account by claiming its email. The second
                // insert stores the user without an email when the first one lost to that rule.
                let email = email.map(str::to_lowercase);
                for email in [email, None] {
                    sqlx::query(
                        "INSERT INTO users (id, email, name, password_hash, external_issuer, external_subject, created_at) \
                         VALUES ($1, $2, $3, NULL, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(houston_protocol::UserId::generate().as_str())
                    .bind(email)
                    .bind(name)
                    .bind(issuer)
                    .bind(subject)
                    .bind(crate::sql::rows::now_ms())
                    .execute(&self.pool)
                    .await?;
                    let row: Option<crate::sql::rows::UserRow> =
                        sqlx::query_as("SELECT * FROM users WHERE external_issuer = $1 AND external_subject = $2")
                            .bind(issuer)
                            .bind(subject)
                            .fetch_optional(&self.pool)
                            .await?;
                    if let Some(row) = row {
                        return row.into_record();
                    }
                }
                Err(crate::StoreError::Conflict(format!("external user {issuer} {subject} could not be stored")))
            }

            async fn set_password_hash(&self, user: &houston_protocol::UserId, password_hash: &str) -> crate::StoreResult<()> {
                sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(user.as_str())
                    .bind(password_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_membership(
                &self,
                workspace: &houston_protocol::WorkspaceId,
                user: &houston_protocol::UserId,
                role: crate::Role,
            ) -> crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(workspace.as_str())
                .bind(user.as_str())
                .bind(role.as_str())
                .bind(crate::sql::rows::now_ms())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_membership(
                &self,
                workspace: &houston_protocol::WorkspaceId,
                user: &houston_protocol::UserId,
            ) -> crate::StoreResult<Option<crate::Role>> {
                let role: Option<(String,)> = sqlx::query_as("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                    .bind(workspace.as_str())
                    .bind(user.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                role.map(|(role,)| crate::Role::parse(&role).ok_or_else(|| crate::StoreError::Corrupt(format!("role {role:?}"))))
                    .transpose()
            }

            async fn list_user_workspaces(&self, user: &houston_protocol::UserId) -> crate::StoreResult<Vec<crate::WorkspaceMembership>> {
                let rows: Vec<crate::sql::rows::WorkspaceRoleRow> = sqlx::query_as(
                    "SELECT w.id, w.slug, w.name, w.created_at, m.role FROM workspaces w \
                     JOIN memberships m ON m.workspace_id = w.id WHERE m.user_id = $1 ORDER BY w.slug",
                )
                .bind(user.as_str())
                .fetch_all(&self.pool)
                .await?;
                crate::sql::rows::convert(rows, crate::sql::rows::WorkspaceRoleRow::into_record)
            }

            async fn list_members(&self, workspace: &houston_protocol::WorkspaceId) -> crate::StoreResult<Vec<crate::Member>> {
                let rows: Vec<crate::sql::rows::MemberRow> = sqlx::query_as(
                    "SELECT m.user_id, u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
                     WHERE m.workspace_id = $1 ORDER BY u.name, m.user_id",
                )
                .bind(workspace.as_str())
                .fetch_all(&self.pool)
                .await?;
                crate::sql::rows::convert(rows, crate::sql::rows::MemberRow::into_record)
            }

            async fn remove_membership(
                &self,
                workspace: &houston_protocol::WorkspaceId,
                user: &houston_protocol::UserId,
            ) -> crate::StoreResult<bool> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM grants WHERE workspace_id = $1 AND user_id = $2")
                    .bind(workspace.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await?;
                let result = sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                    .bind(workspace.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(result.rows_affected() > 0)
            }

            async fn create_agent(&self, agent: crate::NewAgent) -> crate::StoreResult<crate::Agent> {
                let now = crate::sql::rows::now_ms();
                let hosts = serde_json::to_string(&agent.settings.allowed_hosts).unwrap_or_else(|_| "[]".to_owned());
                let tool_policy = crate::sql::rows::tool_policy_text(agent.settings.tools.as_ref());
                let row: crate::sql::rows::AgentRow = sqlx::query_as(
                    "INSERT INTO agents (id, workspace_id, slug, name, description, icon, category, definition, instructions, \
                     provider, model, idle_timeout_secs, keep_warm, allowed_hosts, created_at, updated_at, tool_policy) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16) RETURNING *",
                )
                .bind(houston_protocol::AgentId::generate().as_str())
                .bind(agent.workspace_id.as_str())
                .bind(agent.slug)
                .bind(agent.name)
                .bind(agent.description)
                .bind(agent.icon)
                .bind(agent.category)
                .bind(agent.definition.to_string())
                .bind(agent.instructions)
                .bind(agent.settings.provider)
                .bind(agent.settings.model)
                .bind(agent.settings.idle_timeout_secs)
                .bind(agent.settings.keep_warm)
                .bind(hosts)
                .bind(now)
                .bind(tool_policy)
                .fetch_one(&self.pool)
                .await?;
                row.into_record()
            }

            async fn update_agent(
                &self,
                id: &houston_protocol::AgentId,
                update: crate::AgentUpdate,
            ) -> crate::StoreResult<Option<crate::Agent>> {
                let Some(current) = self.get_agent(id).await? else {
                    return Ok(None);
                };
                let name = update.name.unwrap_or(current.name);
                let settings = update.settings.unwrap_or(current.settings);
                let hosts = serde_json::to_string(&settings.allowed_hosts).unwrap_or_else(|_| "[]".to_owned());
                let tool_policy = crate::sql::rows::tool_policy_text(settings.tools.as_ref());
                let row: Option<crate::sql::rows::AgentRow> = sqlx::query_as(
                    "UPDATE agents SET name = $2, provider = $3, model = $4, idle_timeout_secs = $5, keep_warm = $6, \
                     allowed_hosts = $7, updated_at = $8, tool_policy = $9 WHERE id = $1 RETURNING *",
                )
                .bind(id.as_str())
                .bind(name)
                .bind(settings.provider)
                .bind(settings.model)
                .bind(settings.idle_timeout_secs)
                .bind(settings.keep_warm)
                .bind(hosts)
                .bind(crate::sql::rows::now_ms())
                .bind(tool_policy)
                .fetch_optional(&self.pool)
                .await?;
                row.map(crate::sql::rows::AgentRow::into_record).transpose()
            }

            async fn delete_agent(&self, id: &houston_protocol::AgentId) -> crate::StoreResult<bool> {
                let result = sqlx::query("DELETE FROM agents WHERE id = $1").bind(id.as_str()).execute(&self.pool).await?;
                Ok(result.rows_affected() > 0)
            }

            async fn get_agent(&self, id: &houston_protocol::AgentId) -> crate::StoreResult<Option<crate::Agent>> {
                let row: Option<crate::sql::rows::AgentRow> =
                    sqlx::query_as("SELECT * FROM agents WHERE id = $1").bind(id.as_str()).fetch_optional(&self.pool).await?;
                row.map(crate::sql::rows::AgentRow::into_record).transpose()
            }

            async fn get_agent_by_slug(
                &self,
                workspace: &houston_protocol::WorkspaceId,
                slug: &str,
            ) -> crate::StoreResult<Option<crate::Agent>> {
                let row: Option<crate::sql::rows::AgentRow> = sqlx::query_as("SELECT * FROM agents WHERE workspace_id = $1 AND slug = $2")
                    .bind(workspace.as_str())
                    .bind(slug)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(crate::sql::rows::AgentRow::into_record).transpose()
            }

            async fn list_agents(&self, workspace: &houston_protocol::WorkspaceId) -> crate::StoreResult<Vec<crate::Agent>> {
                let rows: Vec<crate::sql::rows::AgentRow> =
                    sqlx::query_as("SELECT * FROM agents WHERE workspace_id = $1 ORDER BY slug").bind(workspace.as_str()).fetch_all(&self.pool).await?;
                crate::sql::rows::convert(rows, crate::sql::rows::AgentRow::into_record)
            }

            async fn list_usable_agents(
                &self,
                user: &houston_protocol::UserId,
                workspace: Option<&houston_protocol::WorkspaceId>,
            ) -> crate::StoreResult<Vec<crate::Agent>> {
                let rows: Vec<crate::sql::rows::AgentRow> = sqlx::query_as(
                    "SELECT a.* FROM agents a JOIN memberships m ON m.workspace_id = a.workspace_id AND m.user_id = $1 \
                     WHERE (m.role IN ('owner', 'admin') \
                            OR EXISTS (SELECT 1 FROM grants g WHERE g.agent_id = a.id AND g.user_id = $1)) \
                       AND (CAST($2 AS TEXT) IS NULL OR a.workspace_id = $2) \
                     ORDER BY a.workspace_id, a.slug",
                )
                .bind(user.as_str())
                .bind(workspace.map(houston_protocol::WorkspaceId::as_str))
                .fetch_all(&self.pool)
                .await?;
                crate::sql::rows::convert(rows, crate::sql::rows::AgentRow::into_record)
            }

            async fn put_grant(
                &self,
                workspace: &houston_protocol::WorkspaceId,
                agent: &houston_protocol::AgentId,
                user: &houston_protocol::UserId,
            ) -> crate::StoreResult<bool> {
                let result = sqlx::query(
                    "INSERT INTO grants (user_id, agent_id, workspace_id, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id, agent_id) DO NOTHING",
                )
                .bind(user.as_str())
                .bind(agent.as_str())
                .bind(workspace.as_str())
                .bind(crate::sql::rows::now_ms())
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn delete_grant(&self, agent: &houston_protocol::AgentId, user: &houston_protocol::UserId) -> crate::StoreResult<bool> {
                let result = sqlx::query("DELETE FROM grants WHERE agent_id = $1 AND user_id = $2")
                    .bind(agent.as_str())
                    .bind(user.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn list_grants(
                &self,
                workspace: &houston_protocol::WorkspaceId,
                agent: Option<&houston_protocol::AgentId>,
                user: Option<&houston_protocol::UserId>,
            ) -> crate::StoreResult<Vec<crate::Grant>> {
                let rows: Vec<crate::sql::rows::GrantRow> = sqlx::query_as(
                    "SELECT * FROM grants WHERE workspace_id = $1 \
                     AND (CAST($2 AS TEXT) IS NULL OR agent_id = $2) AND (CAST($3 AS TEXT) IS NULL OR user_id = $3) \
                     ORDER BY agent_id, user_id",
                )
                .bind(workspace.as_str())
                .bind(agent.map(houston_protocol::AgentId::as_str))
                .bind(user.map(houston_protocol::UserId::as_str))
                .fetch_all(&self.pool)
                .await?;
                crate::sql::rows::convert(rows, crate::sql::rows::GrantRow::into_record)
            }

            async fn agent_access(
                &self,
                user: &houston_protocol::UserId,
                agent: &houston_protocol::AgentId,
            ) -> crate::StoreResult<crate::AgentAccess> {
                let row: Option<crate::sql::rows::AccessRow> = sqlx::query_as(
                    "SELECT m.role AS role, \
                     EXISTS (SELECT 1 FROM grants g WHERE g.user_id = $1 AND g.agent_id = $2) AS granted \
                     FROM agents a LEFT JOIN memberships m ON m.workspace_id = a.workspace_id AND m.user_id = $1 \
                     WHERE a.id = $2",
                )
                .bind(user.as_str())
                .bind(agent.as_str())
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(row) => row.into_record(),
                    None => Ok(crate::AgentAccess { role: None, granted: false }),
                }
            }

            async fn insert_refresh_token(&self, token: crate::NewRefreshToken) -> crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(token.token_hash)
                .bind(token.family_id)
                .bind(token.user_id.as_str())
                .bind(crate::sql::rows::now_ms())
                .bind(crate::sql::rows::to_ms(token.expires_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn use_refresh_token(&self, token_hash: &str, now: time::OffsetDateTime) -> crate::StoreResult<crate::RefreshOutcome> {
                let now = crate::sql::rows::to_ms(now);
                let rotated: Option<crate::sql::rows::RotatedRow> = sqlx::query_as(
                    "UPDATE refresh_tokens SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
                     RETURNING user_id, family_id",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(rotated) = rotated {
                    return Ok(crate::RefreshOutcome::Rotated { user_id: rotated.user_id()?, family_id: rotated.family_id });
                }
                let state: Option<crate::sql::rows::RefreshStateRow> =
                    sqlx::query_as("SELECT family_id, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1")
                        .bind(token_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                let Some(state) = state.filter(|state| state.used_at.is_some() || state.revoked_at.is_some()) else {
                    return Ok(crate::RefreshOutcome::Invalid);
                };
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
                    .bind(&state.family_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(crate::RefreshOutcome::Reused { family_id: state.family_id })
            }

            async fn revoke_refresh_token(&self, token_hash: &str) -> crate::StoreResult<bool> {
                let result = sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
                     AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
                )
                .bind(token_hash)
                .bind(crate::sql::rows::now_ms())
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn create_invitation(&self, invitation: crate::Invitation) -> crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO invitations (id, workspace_id, email, role, token_hash, created_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(invitation.id)
                .bind(invitation.workspace_id.as_str())
                .bind(invitation.email.to_lowercase())
                .bind(invitation.role.as_str())
                .bind(invitation.token_hash)
                .bind(invitation.created_by.as_ref().map(houston_protocol::UserId::as_str))
                .bind(crate::sql::rows::now_ms())
                .bind(crate::sql::rows::to_ms(invitation.expires_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn accept_invitation(&self, token_hash: &str, now: time::OffsetDateTime) -> crate::StoreResult<Option<crate::Invitation>> {
                let row: Option<crate::sql::rows::InvitationRow> = sqlx::query_as(
                    "UPDATE invitations SET accepted_at = $2 WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 \
                     RETURNING id, workspace_id, email, role, token_hash, created_by, expires_at",
                )
                .bind(token_hash)
                .bind(crate::sql::rows::to_ms(now))
                .fetch_optional(&self.pool)
                .await?;
                row.map(crate::sql::rows::InvitationRow::into_record).transpose()
            }

            async fn insert_audit_entries(&self, entries: &[crate::AuditEntry]) -> crate::StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                for entry in entries {
                    sqlx::query(
                        "INSERT INTO audit_log (id, at, workspace_id, actor_user_id, action, agent_id, target, decision, details) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&entry.id)
                    .bind(crate::sql::rows::to_ms(entry.at))
                    .bind(entry.workspace_id.as_ref().map(houston_protocol::WorkspaceId::as_str))
                    .bind(entry.actor_user_id.as_ref().map(houston_protocol::UserId::as_str))
                    .bind(&entry.action)
                    .bind(entry.agent_id.as_ref().map(houston_protocol::AgentId::as_str))
                    .bind(&entry.target)
                    .bind(&entry.decision)
                    .bind(entry.details.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_audit_entries(
                &self,
                workspace: &houston_protocol::WorkspaceId,
                filter: &crate::AuditFilter,
            ) -> crate::StoreResult<Vec<crate::AuditEntry>> {
                let rows: Vec<crate::sql::rows::AuditRow> = sqlx::query_as(
                    "SELECT * FROM audit_log WHERE workspace_id = $1 \
                     AND (CAST($2 AS TEXT) IS NULL OR action = $2) \
                     AND (CAST($3 AS TEXT) IS NULL OR actor_user_id = $3) \
                     AND (CAST($4 AS TEXT) IS NULL OR agent_id = $4) \
                     AND (CAST($5 AS BIGINT) IS NULL OR at < $5) \
                     ORDER BY at DESC, id DESC LIMIT $6",
                )
                .bind(workspace.as_str())
                .bind(filter.action.as_deref())
                .bind(filter.user_id.as_ref().map(houston_protocol::UserId::as_str))
                .bind(filter.agent_id.as_ref().map(houston_protocol::AgentId::as_str))
                .bind(filter.before.map(crate::sql::rows::to_ms))
                .bind(filter.limit)
                .fetch_all(&self.pool)
                .await?;
                crate::sql::rows::convert(rows, crate::sql::rows::AuditRow::into_record)
            }

            async fn insert_usage_events(&self, events: &[crate::UsageEvent]) -> crate::StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                for event in events {
                    sqlx::query(
                        "INSERT INTO usage_events (id, at, day, workspace_id, agent_id, user_id, messages, input_tokens, \
                         output_tokens, wake_ups, runtime_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&event.id)
                    .bind(crate::sql::rows::to_ms(event.at))
                    .bind(crate::day_of(event.at))
                    .bind(event.workspace_id.as_str())
                    .bind(event.agent_id.as_str())
                    .bind(event.user_id.as_str())
                    .bind(event.messages)
                    .bind(event.input_tokens)
                    .bind(event.output_tokens)
                    .bind(event.wake_ups)
                    .bind(event.runtime_seconds)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn usage_report(
                &self,
                workspace: &houston_protocol::WorkspaceId,
                grouping: crate::UsageGrouping,
                from_day: &str,
                to_day: &str,
            ) -> crate::StoreResult<Vec<crate::UsageRow>> {
                // The grouping column comes from a closed enum, never from the request text.
                let column = match grouping {
                    crate::UsageGrouping::Day => "day",
                    crate::UsageGrouping::Agent => "agent_id",
                    crate::UsageGrouping::User => "user_id",
                };
                let sql = format!(
                    "SELECT {column} AS key, CAST(SUM(messages) AS BIGINT) AS messages, \
                     CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
                     CAST(SUM(wake_ups) AS BIGINT) AS wake_ups, CAST(SUM(runtime_seconds) AS BIGINT) AS runtime_seconds \
                     FROM usage_events WHERE workspace_id = $1 AND day >= $2 AND day <= $3 GROUP BY {column} ORDER BY key"
                );
                let rows: Vec<crate::sql::rows::UsageRowRaw> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(workspace.as_str())
                    .bind(from_day)
                    .bind(to_day)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(crate::sql::rows::UsageRowRaw::into_record).collect())
            }

            async fn upsert_session(&self, session: &crate::SessionRecord) -> crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (agent_id, session_id, user_id, title, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agent_id, session_id) DO UPDATE \
                     SET updated_at = excluded.updated_at, \
                         title = CASE WHEN sessions.title = '' THEN excluded.title ELSE sessions.title END \
                     WHERE sessions.user_id = excluded.user_id",
                )
                .bind(session.agent_id.as_str())
                .bind(session.session_id.as_str())
                .bind(session.user_id.as_str())
                .bind(&session.title)
                .bind(crate::sql::rows::to_ms(session.created_at))
                .bind(crate::sql::rows::to_ms(session.updated_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_session(
                &self,
                agent: &houston_protocol::AgentId,
                session: &houston_protocol::SessionId,
            ) -> crate::StoreResult<Option<crate::SessionRecord>> {
                let row: Option<crate::sql::rows::SessionRow> = sqlx::query_as("SELECT * FROM sessions WHERE agent_id = $1 AND session_id = $2")
                    .bind(agent.as_str())
                    .bind(session.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(crate::sql::rows::SessionRow::into_record).transpose()
            }

            async fn list_sessions(
                &self,
                agent: &houston_protocol::AgentId,
                user: &houston_protocol::UserId,
            ) -> crate::StoreResult<Vec<crate::SessionRecord>> {
                let rows: Vec<crate::sql::rows::SessionRow> = sqlx::query_as(
                    "SELECT * FROM sessions WHERE agent_id = $1 AND user_id = $2 ORDER BY updated_at DESC, session_id",
                )
                .bind(agent.as_str())
                .bind(user.as_str())
                .fetch_all(&self.pool)
                .await?;
                crate::sql::rows::convert(rows, crate::sql::rows::SessionRow::into_record)
            }

            async fn list_signing_keys(&self) -> crate::StoreResult<Vec<crate::SigningKeyRecord>> {
                let rows: Vec<crate::sql::rows::SigningKeyRow> =
                    sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at DESC, kid").fetch_all(&self.pool).await?;
                crate::sql::rows::convert(rows, crate::sql::rows::SigningKeyRow::into_record)
            }

            async fn insert_signing_key(&self, key: &crate::SigningKeyRecord) -> crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, algorithm, private_key_pem, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (kid) DO NOTHING",
                )
                .bind(&key.kid)
                .bind(&key.algorithm)
                .bind(&key.private_key_pem)
                .bind(crate::sql::rows::to_ms(key.created_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_store;
