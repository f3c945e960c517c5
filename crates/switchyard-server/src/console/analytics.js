// Analytics (admins): the tenant's routing figures for a chosen period, as figures, line
// charts over time (per hour up to two days, else per day) and bar charts.

import { api } from './api.js';
import { h, field, percent, num, when } from './dom.js';
import { barChart, lineChart } from './charts.js';
import { errorBox } from './chat.js';

const PRESETS = [
  ['24h', 'Last 24 hours', 24 * 3600e3],
  ['7d', 'Last 7 days', 7 * 24 * 3600e3],
  ['30d', 'Last 30 days', 30 * 24 * 3600e3],
  ['custom', 'Custom period', 0],
];

/** A Date as the value of a datetime-local input (local time, minutes). */
function localInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** The three percentiles in one line: `7.3 / 18 / 18 ms`. */
function latency(l) {
  const one = (v) => (typeof v === 'number' ? num(v, v < 10 ? 1 : 0) : '—');
  return l && typeof l.p50 === 'number' ? `${one(l.p50)} / ${one(l.p95)} / ${one(l.p99)} ms` : '—';
}

function figure(label, value, id) {
  return h('div', { class: 'figure', id }, h('dt', {}, label), h('dd', {}, value));
}

/** The analytics page. */
export function analyticsView() {
  const heading = h('h1', { id: 'analytics-title', tabindex: '-1' }, 'Analytics');
  const period = h('select', { id: 'analytics-period' }, PRESETS.map(([value, label]) => h('option', { value }, label)));
  period.value = '7d';
  const now = new Date();
  const from = h('input', { id: 'analytics-from', type: 'datetime-local', value: localInput(new Date(now - 7 * 24 * 3600e3)) });
  const to = h('input', { id: 'analytics-to', type: 'datetime-local', value: localInput(now) });
  const custom = h('div', { class: 'custom-period', hidden: true }, field('From', from), field('To', to));
  const show = h('button', { id: 'analytics-show', type: 'submit' }, 'Show');
  const form = h('form', { id: 'analytics-form', class: 'inline-form' }, field('Period', period), custom, h('div', { class: 'field actions' }, show));
  const output = h('div', { id: 'analytics-output', 'aria-live': 'polite' });

  period.addEventListener('change', () => {
    custom.hidden = period.value !== 'custom';
  });

  function range() {
    if (period.value === 'custom') {
      const a = new Date(from.value);
      const b = new Date(to.value);
      if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime())) return { error: 'Give both the start and the end of the period.' };
      if (a > b) return { error: 'The start of the period must come before its end.' };
      return { from: a, to: b };
    }
    const span = PRESETS.find(([value]) => value === period.value)[2];
    // The end is a minute ahead so that a turn stored this very second is counted.
    const nowMs = Date.now();
    return { from: new Date(nowMs - span), to: new Date(nowMs + 60e3) };
  }

  /** Hours for up to two days, else days. */
  function bucketOf(r) {
    return r.to - r.from <= 2 * 24 * 3600e3 ? 'hour' : 'day';
  }

  /** A bucket's start as a short label: the hour, or the day. */
  function pointLabel(iso, bucket) {
    const d = new Date(iso);
    return bucket === 'hour'
      ? d.toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' })
      : d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  }

  async function load() {
    const r = range();
    if (r.error) {
      output.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, r.error));
      return;
    }
    show.disabled = true;
    output.setAttribute('aria-busy', 'true');
    try {
      const bucket = bucketOf(r);
      const q = `from=${encodeURIComponent(r.from.toISOString())}&to=${encodeURIComponent(r.to.toISOString())}&bucket=${bucket}`;
      const a = await api('GET', `/v1/analytics/routing?${q}`);
      const per = bucket === 'hour' ? 'per hour' : 'per day';
      const series = (a.series || []).map((p) => ({ ...p, label: pointLabel(p.from, bucket) }));
      const ms = (v) => (typeof v === 'number' ? `${num(v, v < 10 ? 1 : 0)} ms` : '—');
      output.replaceChildren(
        h('p', { class: 'period' }, `From ${when(a.from)} to ${when(a.to)}`),
        h(
          'dl',
          { id: 'analytics-summary', class: 'figures-grid' },
          figure('Turns', num(a.turns), 'fig-turns'),
          figure('Conversations', num(a.conversations), 'fig-conversations'),
          figure('Mean confidence', percent(a.mean_confidence), 'fig-confidence'),
          figure('Fallback rate', percent(a.fallback_rate), 'fig-fallback'),
          figure('Agent error rate', percent(a.agent_error_rate), 'fig-errors'),
          figure('Latency p50 / p95 / p99', latency(a.latency_ms), 'fig-latency'),
        ),
        h(
          'div',
          { class: 'charts over-time' },
          lineChart({
            id: 'chart-turns-over-time',
            title: `Turns ${per}`,
            points: series.map((p) => ({ label: p.label, value: p.turns })),
            format: (v) => num(v),
          }),
          lineChart({
            id: 'chart-fallback-over-time',
            title: `Fallback rate ${per}`,
            points: series.map((p) => ({ label: p.label, value: p.fallback_rate })),
            format: (v) => percent(v),
          }),
          lineChart({
            id: 'chart-latency-over-time',
            title: `Latency p95 ${per}`,
            points: series.map((p) => ({ label: p.label, value: p.latency_p95_ms })),
            format: ms,
          }),
        ),
        h(
          'div',
          { class: 'charts' },
          barChart({
            id: 'chart-intents',
            title: 'Turns by intent',
            rows: (a.by_intent || []).map((r) => ({ label: r.intent ?? '(none)', values: [r.turns] })),
            series: [{ name: 'turns', className: 's1' }],
            format: (v) => num(v),
          }),
          barChart({
            id: 'chart-agents',
            title: 'Turns and failed calls by agent',
            rows: (a.by_agent || []).map((r) => ({ label: r.name ?? `(deleted ${String(r.agent_id).slice(0, 8)})`, values: [r.turns, r.errors] })),
            series: [
              { name: 'turns', className: 's1' },
              { name: 'failed calls', className: 's2' },
            ],
            format: (v) => num(v),
          }),
          barChart({
            id: 'chart-latency',
            title: 'Turn latency percentiles',
            rows: a.turns > 0 ? ['p50', 'p95', 'p99'].map((p) => ({ label: p, values: [a.latency_ms?.[p] ?? 0] })) : [],
            series: [{ name: 'milliseconds', className: 's3' }],
            format: ms,
          }),
        ),
      );
    } catch (error) {
      output.replaceChildren(errorBox(error, 'analytics'));
    } finally {
      show.disabled = false;
      output.setAttribute('aria-busy', 'false');
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
  load();
  const view = h('section', { id: 'analytics-view', class: 'view', 'aria-labelledby': 'analytics-title' }, heading, form, output);
  return { element: view, focusTarget: heading };
}
