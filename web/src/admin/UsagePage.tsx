import { useState } from 'react';
import type { UsageRow } from '../api/types';
import { useApp } from '../app/context';
import { Alert } from '../components/Alert';
import { BarChart } from '../components/BarChart';
import { useAdminData } from './useAdminData';

type Metric = 'messages' | 'tokens' | 'wake_ups';

const METRIC_LABELS: Record<Metric, string> = {
  messages: 'Messages',
  tokens: 'Tokens (input + output)',
  wake_ups: 'Wake-ups',
};

function metricValue(row: UsageRow, metric: Metric): number {
  return metric === 'tokens' ? row.input_tokens + row.output_tokens : row[metric];
}

function isoDay(offsetDays: number): string {
  const date = new Date();
  date.setUTCDate(date.getUTCDate() + offsetDays);
  return date.toISOString().slice(0, 10);
}

export function UsagePage() {
  const { api } = useApp();
  const [from, setFrom] = useState(isoDay(-13));
  const [to, setTo] = useState(isoDay(0));
  const [metric, setMetric] = useState<Metric>('messages');
  const range = { from, to };
  const byDay = useAdminData((id) => api.usage(id, 'day', range), [from, to]);
  const byAgent = useAdminData((id) => api.usage(id, 'agent', range), [from, to]);
  const agents = useAdminData((id) => api.workspaceAgents(id));
  const agentName = (key: string) => agents.data?.find((agent) => agent.id === key)?.name ?? key;

  const dayBars = (byDay.data ?? []).map((row) => ({ label: row.key.slice(5), value: metricValue(row, metric) }));
  const agentBars = (byAgent.data ?? []).map((row) => ({ label: agentName(row.key), value: metricValue(row, metric) }));
  return (
    <section aria-labelledby="usage-heading">
      <h2 id="usage-heading">Usage</h2>
      <div className="inline-form">
        <label>
          From
          <input type="date" value={from} max={to} onChange={(event) => setFrom(event.target.value)} />
        </label>
        <label>
          To
          <input type="date" value={to} min={from} onChange={(event) => setTo(event.target.value)} />
        </label>
        <fieldset className="segmented">
          <legend>Show</legend>
          {(Object.keys(METRIC_LABELS) as Metric[]).map((candidate) => (
            <label key={candidate}>
              <input type="radio" name="metric" checked={metric === candidate} onChange={() => setMetric(candidate)} />
              {METRIC_LABELS[candidate]}
            </label>
          ))}
        </fieldset>
      </div>
      {(byDay.error || byAgent.error) && <Alert>{byDay.error ?? byAgent.error}</Alert>}
      <div className="charts">
        <BarChart title={`${METRIC_LABELS[metric]} per day`} bars={dayBars} />
        <BarChart title={`${METRIC_LABELS[metric]} per agent`} bars={agentBars} horizontal />
      </div>
    </section>
  );
}
