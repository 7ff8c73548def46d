//! The audit log and usage reports of a workspace.

use axum::Json;
use axum::extract::{Path, Query, State};
use houston_protocol::{AgentId, UserId};
use houston_store::{AuditEntry, AuditFilter, UsageGrouping, UsageRow};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::admin_context;
use crate::auth::AuthenticatedUser;
use crate::error::{ApiError, FieldErrors};
use crate::routes::ErrorResponse;
use crate::state::AppState;

const DEFAULT_AUDIT_LIMIT: i64 = 100;
const MAX_AUDIT_LIMIT: i64 = 1000;
/// Days a usage report covers when `from` is not given.
const DEFAULT_USAGE_DAYS: i64 = 30;

/// Query of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    /// Only entries before this time (RFC 3339), for paging.
    pub before: Option<String>,
    /// At most this many entries (1 to 1000, default 100).
    pub limit: Option<i64>,
}

/// Response body of the audit log, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<AuditEntry>,
}

/// Query of a usage report.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UsageQuery {
    /// `day` (default), `agent` or `user`.
    pub group_by: Option<String>,
    /// First day, `YYYY-MM-DD` (default: 30 days ago).
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: today).
    pub to: Option<String>,
}

/// Response body of a usage report.
#[derive(Serialize, ToSchema)]
pub struct UsageReport {
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<UsageRow>,
}

/// Lists the audit log of the workspace.
#[utoipa::path(get, path = "/v1/workspaces/{workspace}/audit", params(("workspace" = String, Path), AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditList), (status = 403, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path(workspace): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let mut fields = FieldErrors::default();
    let user_id = query.user_id.as_deref().and_then(|value| UserId::parse(value).map_err(|error| fields.add("user_id", error.to_string())).ok());
    let agent_id = query.agent_id.as_deref().and_then(|value| AgentId::parse(value).map_err(|error| fields.add("agent_id", error.to_string())).ok());
    let before = query.before.as_deref().and_then(|value| {
        OffsetDateTime::parse(value, &Rfc3339).map_err(|_| fields.add("before", format!("{value:?} is not an RFC 3339 time"))).ok()
    });
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        fields.add("limit", format!("must be from 1 to {MAX_AUDIT_LIMIT}"));
    }
    fields.finish()?;
    let filter = AuditFilter { action: query.action, user_id, agent_id, before, limit };
    let entries = state.store.list_audit_entries(&context.workspace.id, &filter).await?;
    Ok(Json(AuditList { entries }))
}

/// Sums usage of the workspace per day, agent or user.
#[utoipa::path(get, path = "/v1/workspaces/{workspace}/usage", params(("workspace" = String, Path), UsageQuery), security(("bearer" = [])),
    responses((status = 200, body = UsageReport), (status = 403, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn usage(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path(workspace): Path<String>,
    Query(query): Query<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let mut fields = FieldErrors::default();
    let grouping = match query.group_by.as_deref().unwrap_or("day") {
        "day" => UsageGrouping::Day,
        "agent" => UsageGrouping::Agent,
        "user" => UsageGrouping::User,
        other => {
            fields.add("group_by", format!("{other:?} is not one of day, agent, user"));
            UsageGrouping::Day
        }
    };
    let today = OffsetDateTime::now_utc();
    let from = day_field(&mut fields, "from", query.from, today - time::Duration::days(DEFAULT_USAGE_DAYS));
    let to = day_field(&mut fields, "to", query.to, today);
    let both_valid = from.as_ref().zip(to.as_ref());
    if both_valid.is_some_and(|(from, to)| from > to) {
        fields.add("from", "must not be after to");
    }
    fields.finish()?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::InvalidBody("invalid day".to_owned()));
    };
    let rows = state.store.usage_report(&context.workspace.id, grouping, &from, &to).await?;
    Ok(Json(UsageReport { rows }))
}

/// Checks a `YYYY-MM-DD` query value, or formats the default day; `None` when invalid.
fn day_field(fields: &mut FieldErrors, name: &str, value: Option<String>, default: OffsetDateTime) -> Option<String> {
    let Some(value) = value else {
        return Some(houston_store::day_of(default));
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(&value, format).is_err() {
        fields.add(name, format!("{value:?} is not a day in the form YYYY-MM-DD"));
        return None;
    }
    Some(value)
}
