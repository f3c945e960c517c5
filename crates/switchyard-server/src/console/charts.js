// Bar charts drawn as inline SVG from the analytics figures (no library). Each chart is an
// image with a text alternative, and the same figures are in a table for screen readers.

import { h, svg, uid } from './dom.js';

/**
 * A horizontal bar chart. `rows`: `[{label, values: [number…]}]`; `series`:
 * `[{name, className}]`, one per value; `format(value)` labels a bar.
 */
export function barChart({ id, title, rows, series, format = String }) {
  const titleId = uid('chart-title');
  const figure = h('figure', { id, class: 'chart' }, h('figcaption', { id: titleId }, title));
  if (rows.length === 0) {
    figure.append(h('p', { class: 'empty' }, 'No data for this period.'));
    return figure;
  }
  const labelWidth = 150;
  const valueWidth = 80;
  const width = 600;
  const barArea = width - labelWidth - valueWidth;
  const barHeight = 16;
  const gap = 4;
  const rowHeight = series.length * (barHeight + gap) + 10;
  const height = rows.length * rowHeight + 6;
  const max = Math.max(1e-9, ...rows.flatMap((r) => r.values.filter((v) => typeof v === 'number')));
  const summary = rows
    .map((r) => `${r.label}: ${r.values.map((v, i) => `${series[i].name} ${format(v)}`).join(', ')}`)
    .join('; ');
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart-svg',
    role: 'img',
    'aria-labelledby': titleId,
    'aria-describedby': `${titleId}-desc`,
    preserveAspectRatio: 'xMinYMin meet',
  });
  chart.append(svg('desc', { id: `${titleId}-desc` }, summary));
  rows.forEach((row, i) => {
    const top = i * rowHeight + 4;
    const label = row.label.length > 22 ? `${row.label.slice(0, 21)}…` : row.label;
    chart.append(
      svg('text', { x: labelWidth - 8, y: top + (series.length * (barHeight + gap)) / 2 + 4, 'text-anchor': 'end', class: 'chart-label' },
        svg('title', {}, row.label), label),
    );
    row.values.forEach((value, j) => {
      const v = typeof value === 'number' && Number.isFinite(value) ? value : 0;
      const y = top + j * (barHeight + gap);
      const w = Math.max(v > 0 ? 2 : 0, (v / max) * barArea);
      chart.append(
        svg('rect', { x: labelWidth, y, width: w.toFixed(1), height: barHeight, rx: 2, class: `bar ${series[j].className}` },
          svg('title', {}, `${row.label}: ${series[j].name} ${format(value)}`)),
        svg('text', { x: labelWidth + w + 6, y: y + barHeight - 4, class: 'chart-value' }, format(value)),
      );
    });
  });
  figure.append(chart);
  if (series.length > 1) {
    figure.append(
      h('ul', { class: 'legend' }, series.map((s) => h('li', {}, h('span', { class: `swatch ${s.className}`, 'aria-hidden': 'true' }), s.name))),
    );
  }
  figure.append(
    h(
      'table',
      { class: 'visually-hidden' },
      h('caption', {}, title),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Item'), series.map((s) => h('th', { scope: 'col' }, s.name)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, r.label), r.values.map((v) => h('td', {}, format(v)))))),
    ),
  );
  return figure;
}
