// A small SVG bar chart: one bar per row, value labels on the bars, and a table-like
// description for screen readers.

export interface Bar {
  label: string;
  value: number;
}

const BAR_GAP = 6;
const HEIGHT = 180;
const LABEL_SPACE = 36;

export function BarChart({ title, bars, unit = '' }: { title: string; bars: Bar[]; unit?: string }) {
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  const barWidth = Math.max(14, Math.min(48, 560 / Math.max(1, bars.length) - BAR_GAP));
  const width = Math.max(240, bars.length * (barWidth + BAR_GAP) + BAR_GAP);
  const summary = bars.map((bar) => `${bar.label}: ${bar.value}${unit}`).join(', ');
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${width} ${HEIGHT + LABEL_SPACE}`} role="img" aria-label={`${title}. ${summary || 'No data.'}`} preserveAspectRatio="xMinYMin meet">
        <line x1={0} y1={HEIGHT} x2={width} y2={HEIGHT} className="axis" />
        {bars.map((bar, index) => {
          const height = (bar.value / max) * (HEIGHT - 20);
          const x = BAR_GAP + index * (barWidth + BAR_GAP);
          return (
            <g key={bar.label}>
              <rect x={x} y={HEIGHT - height} width={barWidth} height={height} className="bar" rx={3} />
              <text x={x + barWidth / 2} y={HEIGHT - height - 4} textAnchor="middle" className="value">
                {bar.value}
              </text>
              <text x={x + barWidth / 2} y={HEIGHT + 14} textAnchor="middle" className="label">
                {bar.label.length > 10 ? `${bar.label.slice(0, 9)}…` : bar.label}
              </text>
            </g>
          );
        })}
      </svg>
      {bars.length === 0 && <p className="muted">No usage in this period.</p>}
    </figure>
  );
}
