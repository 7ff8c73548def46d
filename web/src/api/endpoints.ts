// Typed calls for every JSON route the app uses (docs/api.md).

import { ApiClient, ApiError } from './http';
import type {
  Agent,
  AgentSettings,
  AuditEntry,
  AuthConfig,
  Grant,
  Invitation,
  Me,
  Member,
  Role,
  SessionDetail,
  SessionSummary,
  TokenSet,
  UsageRow,
} from './types';

const enc = encodeURIComponent;

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') {
      search.set(name, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** The app's API surface, bound to one client. */
export class HoustonApi {
  constructor(readonly client: ApiClient) {}

  /**
   * Returns the sign-in options. A server without `GET /v1/auth/config` offers only the
   * built-in issuer.
   */
  async authConfig(): Promise<AuthConfig> {
    try {
      return await this.client.json<AuthConfig>('GET', '/v1/auth/config', { anonymous: true });
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        return { password_login: true, oidc: null };
      }
      throw error;
    }
  }

  acceptInvitation(token: string, name: string, password: string): Promise<TokenSet> {
    return this.client.json('POST', '/v1/invitations/accept', {
      body: { token, name, password },
      anonymous: true,
    });
  }

  me(): Promise<Me> {
    return this.client.json('GET', '/v1/me');
  }

  async agents(workspaceId?: string): Promise<Agent[]> {
    const body = await this.client.json<{ agents: Agent[] }>(
      'GET',
      `/v1/agents${query({ workspace_id: workspaceId })}`,
    );
    return body.agents;
  }

  agent(agent: string): Promise<Agent> {
    return this.client.json('GET', `/v1/agents/${enc(agent)}`);
  }

  async sessions(agent: string): Promise<SessionSummary[]> {
    const body = await this.client.json<{ sessions: SessionSummary[] }>(
      'GET',
      `/v1/agents/${enc(agent)}/sessions`,
    );
    return body.sessions;
  }

  session(agent: string, sessionId: string): Promise<SessionDetail> {
    return this.client.json('GET', `/v1/agents/${enc(agent)}/sessions/${enc(sessionId)}`);
  }

  // Administration. `workspace` is the workspace id or slug.

  async members(workspace: string): Promise<Member[]> {
    const body = await this.client.json<{ members: Member[] }>(
      'GET',
      `/v1/workspaces/${enc(workspace)}/members`,
    );
    return body.members;
  }

  addMember(
    workspace: string,
    member: { email: string; name?: string; role: Role; password?: string },
  ): Promise<Member> {
    return this.client.json('POST', `/v1/workspaces/${enc(workspace)}/members`, { body: member });
  }

  updateMemberRole(workspace: string, userId: string, role: Role): Promise<Member> {
    return this.client.json('PATCH', `/v1/workspaces/${enc(workspace)}/members/${enc(userId)}`, {
      body: { role },
    });
  }

  async removeMember(workspace: string, userId: string): Promise<void> {
    await this.client.send('DELETE', `/v1/workspaces/${enc(workspace)}/members/${enc(userId)}`);
  }

  invite(workspace: string, email: string, role: Role): Promise<Invitation> {
    return this.client.json('POST', `/v1/workspaces/${enc(workspace)}/invitations`, {
      body: { email, role },
    });
  }

  async workspaceAgents(workspace: string): Promise<Agent[]> {
    const body = await this.client.json<{ agents: Agent[] }>(
      'GET',
      `/v1/workspaces/${enc(workspace)}/agents`,
    );
    return body.agents;
  }

  createAgent(
    workspace: string,
    agent: { slug: string; definition: unknown; instructions?: string; settings?: AgentSettings },
  ): Promise<Agent> {
    return this.client.json('POST', `/v1/workspaces/${enc(workspace)}/agents`, { body: agent });
  }

  updateAgent(
    workspace: string,
    agent: string,
    change: { name?: string; settings?: AgentSettings },
  ): Promise<Agent> {
    return this.client.json('PATCH', `/v1/workspaces/${enc(workspace)}/agents/${enc(agent)}`, {
      body: change,
    });
  }

  async deleteAgent(workspace: string, agent: string): Promise<void> {
    await this.client.send('DELETE', `/v1/workspaces/${enc(workspace)}/agents/${enc(agent)}`);
  }

  async grants(workspace: string): Promise<Grant[]> {
    const body = await this.client.json<{ grants: Grant[] }>(
      'GET',
      `/v1/workspaces/${enc(workspace)}/grants`,
    );
    return body.grants;
  }

  async setGrant(workspace: string, agent: string, userId: string, granted: boolean): Promise<void> {
    const path = `/v1/workspaces/${enc(workspace)}/agents/${enc(agent)}/grants/${enc(userId)}`;
    await this.client.send(granted ? 'PUT' : 'DELETE', path);
  }

  async audit(
    workspace: string,
    filters: { action?: string; user_id?: string; agent_id?: string; before?: string; limit?: number },
  ): Promise<AuditEntry[]> {
    const body = await this.client.json<{ entries: AuditEntry[] }>(
      'GET',
      `/v1/workspaces/${enc(workspace)}/audit${query(filters)}`,
    );
    return body.entries;
  }

  async usage(
    workspace: string,
    groupBy: 'day' | 'agent' | 'user',
    range: { from?: string; to?: string },
  ): Promise<UsageRow[]> {
    const body = await this.client.json<{ rows: UsageRow[] }>(
      'GET',
      `/v1/workspaces/${enc(workspace)}/usage${query({ group_by: groupBy, ...range })}`,
    );
    return body.rows;
  }
}
