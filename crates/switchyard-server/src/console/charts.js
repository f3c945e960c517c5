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

/**
 * A line chart over time. `points`: `[{label, value}]` in order (a missing value is a gap);
 * `format(value)` labels a point. Like the bar charts: an image with a text alternative,
 * and the same figures in a table for screen readers.
 */
export function lineChart({ id, title, points, format = String }) {
  const titleId = uid('chart-title');
  const figure = h('figure', { id, class: 'chart line-chart' }, h('figcaption', { id: titleId }, title));
  const values = points.map((p) => p.value).filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (points.length === 0 || values.length === 0) {
    figure.append(h('p', { class: 'empty' }, 'No data for this period.'));
    return figure;
  }
  const width = 600;
  const height = 180;
  const left = 56;
  const bottom = 24;
  const top = 10;
  const max = Math.max(1e-9, ...values);
  const x = (i) => left + (points.length === 1 ? (width - left) / 2 : (i / (points.length - 1)) * (width - left - 8));
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart-svg',
    role: 'img',
    'aria-labelledby': titleId,
    'aria-describedby': `${titleId}-desc`,
    preserveAspectRatio: 'xMinYMin meet',
  });
  chart.append(svg('desc', { id: `${titleId}-desc` }, points.map((p) => `${p.label}: ${format(p.value)}`).join('; ')));
  chart.append(
    svg('line', { x1: left, y1: y(0), x2: width - 4, y2: y(0), class: 'axis' }),
    svg('text', { x: left - 6, y: y(max) + 4, 'text-anchor': 'end', class: 'chart-value' }, format(max)),
    svg('text', { x: left - 6, y: y(0) + 4, 'text-anchor': 'end', class: 'chart-value' }, format(0)),
    svg('text', { x: left, y: height - 6, class: 'chart-label' }, points[0].label),
    svg('text', { x: width - 4, y: height - 6, 'text-anchor': 'end', class: 'chart-label' }, points[points.length - 1].label),
  );
  // Runs of points with a value, each one line; every point a dot with its figure.
  let run = [];
  const flush = () => {
    if (run.length > 1) chart.append(svg('polyline', { points: run.join(' '), class: 'line s1' }));
    run = [];
  };
  points.forEach((p, i) => {
    if (typeof p.value !== 'number' || !Number.isFinite(p.value)) {
      flush();
      return;
    }
    const at = `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
    run.push(at);
    chart.append(svg('circle', { cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 3, class: 'dot s1' }, svg('title', {}, `${p.label}: ${format(p.value)}`)));
  });
  flush();
  figure.append(
    chart,
    h(
      'table',
      { class: 'visually-hidden' },
      h('caption', {}, title),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, title))),
      h('tbody', {}, points.map((p) => h('tr', {}, h('th', { scope: 'row' }, p.label), h('td', {}, format(p.value))))),
    ),
  );
  return figure;
}
