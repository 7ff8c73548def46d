import { useState, type ChangeEvent, type FormEvent } from 'react';
import type { Agent, AgentSettings } from '../api/types';
import { useApp } from '../app/context';
import { AgentIcon } from '../components/AgentIcon';
import { Alert } from '../components/Alert';
import { useAction, useAdminData } from './useAdminData';

const SLUG_PATTERN = '[a-z0-9][a-z0-9-]{0,62}';

async function readFile(event: ChangeEvent<HTMLInputElement>): Promise<string | null> {
  const file = event.target.files?.[0];
  return file ? file.text() : null;
}

/** Parses a pasted houston.json; returns the parsed value or a message naming the problem. */
export function parseDefinition(text: string): { definition?: Record<string, unknown>; error?: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `houston.json is not valid JSON: ${(error as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'houston.json must be a JSON object.' };
  }
  const definition = value as Record<string, unknown>;
  for (const field of ['id', 'name']) {
    if (typeof definition[field] !== 'string' || definition[field] === '') {
      return { error: `houston.json is missing the "${field}" field.` };
    }
  }
  return { definition };
}

function CreateAgentForm({ workspaceId, onCreated }: { workspaceId: string; onCreated: () => void }) {
  const { api } = useApp();
  const action = useAction();
  const [slug, setSlug] = useState('');
  const [definitionText, setDefinitionText] = useState('');
  const [instructions, setInstructions] = useState('');
  const [problem, setProblem] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const parsed = parseDefinition(definitionText);
    setProblem(parsed.error ?? null);
    if (!parsed.definition) {
      return;
    }
    const agentSlug = slug.trim() || String(parsed.definition.id);
    const created = await action.run(() =>
      api.createAgent(workspaceId, { slug: agentSlug, definition: parsed.definition, instructions: instructions || undefined }),
    );
    if (created) {
      setSlug('');
      setDefinitionText('');
      setInstructions('');
      onCreated();
    }
  };

  return (
    <form className="stack create-agent" onSubmit={(event) => void submit(event)}>
      <h3>Create an agent from a Houston definition</h3>
      <label>
        Slug (defaults to the definition's id)
        <input value={slug} pattern={SLUG_PATTERN} onChange={(event) => setSlug(event.target.value)} />
      </label>
      <label>
        houston.json
        <textarea rows={6} required value={definitionText} onChange={(event) => setDefinitionText(event.target.value)} />
      </label>
      <label>
        Or upload houston.json
        <input type="file" accept=".json,application/json" onChange={(event) => void readFile(event).then((text) => text !== null && setDefinitionText(text))} />
      </label>
      <label>
        CLAUDE.md (instructions)
        <textarea rows={6} value={instructions} onChange={(event) => setInstructions(event.target.value)} />
      </label>
      <label>
        Or upload CLAUDE.md
        <input type="file" accept=".md,text/markdown,text/plain" onChange={(event) => void readFile(event).then((text) => text !== null && setInstructions(text))} />
      </label>
      {(problem || action.error) && <Alert>{problem ?? action.error}</Alert>}
      <button type="submit" className="button" disabled={action.busy}>
        Create agent
      </button>
    </form>
  );
}

function SettingsForm({ agent, workspaceId, onSaved }: { agent: Agent; workspaceId: string; onSaved: () => void }) {
  const { api } = useApp();
  const action = useAction();
  const settings = agent.settings ?? {};
  const [model, setModel] = useState(settings.model ?? '');
  const [idle, setIdle] = useState(String(settings.idle_timeout_secs ?? 120));
  const [keepWarm, setKeepWarm] = useState(settings.keep_warm ?? false);
  const [hosts, setHosts] = useState((settings.allowed_hosts ?? []).join('\n'));
  const [saved, setSaved] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    const change: AgentSettings = {
      ...settings,
      model: model.trim() || undefined,
      idle_timeout_secs: Number(idle),
      keep_warm: keepWarm,
      allowed_hosts: hosts.split(/[\s,]+/).filter(Boolean),
    };
    if (await action.run(() => api.updateAgent(workspaceId, agent.id, { settings: change }))) {
      setSaved(true);
      onSaved();
    }
  };

  const id = `agent-${agent.id}`;
  return (
    <form className="settings-form" onSubmit={(event) => void submit(event)} aria-label={`Settings of ${agent.name}`}>
      <label htmlFor={`${id}-model`}>Model</label>
      <input id={`${id}-model`} value={model} placeholder="provider default" onChange={(event) => setModel(event.target.value)} />
      <label htmlFor={`${id}-idle`}>Idle timeout (seconds)</label>
      <input id={`${id}-idle`} type="number" min={10} max={86400} required value={idle} onChange={(event) => setIdle(event.target.value)} />
      <label className="checkbox">
        <input type="checkbox" checked={keepWarm} onChange={(event) => setKeepWarm(event.target.checked)} /> Keep warm (never sleep)
      </label>
      <label htmlFor={`${id}-hosts`}>Allowed hosts (one per line)</label>
      <textarea id={`${id}-hosts`} rows={3} value={hosts} onChange={(event) => setHosts(event.target.value)} />
      {action.error && <Alert>{action.error}</Alert>}
      {saved && <Alert kind="info">Saved.</Alert>}
      <button type="submit" className="button" disabled={action.busy}>
        Save settings
      </button>
    </form>
  );
}

export function AgentsPage() {
  const { api } = useApp();
  const { data: agents, error, reload, workspaceId } = useAdminData((id) => api.workspaceAgents(id));
  const action = useAction();
  // A new key after each creation gives a blank form, file inputs included.
  const [formKey, setFormKey] = useState(0);

  return (
    <section aria-labelledby="agents-heading">
      <h2 id="agents-heading">Agents</h2>
      {error && <Alert>{error}</Alert>}
      {action.error && <Alert>{action.error}</Alert>}
      <ul className="agent-admin-list">
        {agents?.map((agent) => (
          <li key={agent.id}>
            <details>
              <summary>
                <AgentIcon name={agent.icon} size={20} /> <strong>{agent.name}</strong> <span className="muted">{agent.slug}</span>
              </summary>
              <p className="muted">{agent.description}</p>
              <SettingsForm agent={agent} workspaceId={workspaceId} onSaved={() => void reload()} />
              <button
                type="button"
                className="button danger small"
                onClick={() => {
                  if (window.confirm(`Delete ${agent.name}? Its conversations are deleted too.`)) {
                    void action.run(() => api.deleteAgent(workspaceId, agent.id)).then(reload);
                  }
                }}
              >
                Delete agent
              </button>
            </details>
          </li>
        ))}
      </ul>
      <CreateAgentForm
        key={formKey}
        workspaceId={workspaceId}
        onCreated={() => {
          setFormKey((current) => current + 1);
          void reload();
        }}
      />
    </section>
  );
}
