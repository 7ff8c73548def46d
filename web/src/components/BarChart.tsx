// Small SVG bar charts: vertical bars for a time series, horizontal bars for named rows. The
// SVG's accessible name lists every value, so screen readers get the numbers too.

export interface Bar {
  label: string;
  value: number;
}

const WIDTH = 600;
const GAP = 6;

function describe(title: string, bars: Bar[]): string {
  const values = bars.map((bar) => `${bar.label}: ${bar.value}`).join(', ');
  return `${title}. ${values || 'No data.'}`;
}

function shorten(label: string, max: number): string {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

function VerticalBars({ bars }: { bars: Bar[] }) {
  const height = 180;
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  const barWidth = Math.min(48, (WIDTH - GAP) / Math.max(1, bars.length) - GAP);
  return (
    <>
      <line x1={0} y1={height} x2={WIDTH} y2={height} className="axis" />
      {bars.map((bar, index) => {
        const barHeight = (bar.value / max) * (height - 20);
        const x = GAP + index * (barWidth + GAP);
        return (
          <g key={bar.label}>
            <rect x={x} y={height - barHeight} width={barWidth} height={barHeight} className="bar" rx={3} />
            <text x={x + barWidth / 2} y={height - barHeight - 4} textAnchor="middle" className="value">
              {bar.value}
            </text>
            <text x={x + barWidth / 2} y={height + 14} textAnchor="middle" className="label">
              {shorten(bar.label, 8)}
            </text>
          </g>
        );
      })}
    </>
  );
}

function HorizontalBars({ bars }: { bars: Bar[] }) {
  const labelWidth = 170;
  const rowHeight = 28;
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  const room = WIDTH - labelWidth - 50;
  return (
    <>
      {bars.map((bar, index) => {
        const y = index * rowHeight + 4;
        const barWidth = (bar.value / max) * room;
        return (
          <g key={bar.label}>
            <text x={labelWidth - 8} y={y + 15} textAnchor="end" className="label">
              {shorten(bar.label, 24)}
            </text>
            <rect x={labelWidth} y={y} width={barWidth} height={rowHeight - 8} className="bar" rx={3} />
            <text x={labelWidth + barWidth + 6} y={y + 15} className="value">
              {bar.value}
            </text>
          </g>
        );
      })}
    </>
  );
}

export function BarChart({ title, bars, horizontal = false }: { title: string; bars: Bar[]; horizontal?: boolean }) {
  const height = horizontal ? Math.max(1, bars.length) * 28 + 8 : 200;
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      {bars.length === 0 ? (
        <p className="muted">No usage in this period.</p>
      ) : (
        <svg viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={describe(title, bars)}>
          {horizontal ? <HorizontalBars bars={bars} /> : <VerticalBars bars={bars} />}
        </svg>
      )}
    </figure>
  );
}
