// The routing lab (admins): routing measured on labelled messages (CSV rows
// `message,agent`), a draft of changes to the agents measured side by side with the live
// agents (evaluate, and replay on the stored turns), and "Apply" to save the draft through
// the ordinary agent routes. Nothing is saved before "Apply".

import { api, listAll } from './api.js';
import { h, field, focus, percent, num } from './dom.js';
import { errorBox } from './chat.js';
import { barChart } from './charts.js';

const NEW = '';

const splitList = (text, sep) =>
  text
    .split(sep)
    .map((s) => s.trim())
    .filter(Boolean);

function figure(label, value, id) {
  return h('div', { class: 'figure', id }, h('dt', {}, label), h('dd', {}, value));
}

/** A number of messages with its share: `983 of 1,076 (91%)`. */
function outOf(e) {
  return `${num(e.correct)} of ${num(e.total)} (${percent(e.accuracy)})`;
}

/** The confusion table as a heat map: expected agents down, chosen agents across. */
function heatMap(evaluation, caption) {
  const names = [...new Set(evaluation.confusion.flatMap((c) => [c.expected, c.got]))].sort();
  const count = new Map(evaluation.confusion.map((c) => [`${c.expected}\u0000${c.got}`, c.count]));
  const max = Math.max(1, ...evaluation.confusion.map((c) => c.count));
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id: 'lab-confusion', class: 'heatmap' },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'expected ↓ / chosen →'), names.map((n) => h('th', { scope: 'col' }, n)))),
      h(
        'tbody',
        {},
        names.map((expected) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, expected),
            names.map((got) => {
              const n = count.get(`${expected}\u0000${got}`) || 0;
              const level = n === 0 ? 0 : Math.max(1, Math.round((n / max) * 5));
              const kind = expected === got ? 'right' : 'wrong';
              return h('td', { class: `heat heat-${level} ${n ? kind : ''}`, title: `${expected} → ${got}: ${n}` }, n ? String(n) : '');
            }),
          ),
        ),
      ),
    ),
  );
}

function agentTable(live, proposed) {
  const rows = new Map();
  for (const a of live.by_agent) rows.set(a.name, { name: a.name, support: a.support, live: a });
  for (const a of proposed?.by_agent || []) {
    const row = rows.get(a.name) || { name: a.name, support: a.support };
    row.support = a.support;
    row.draft = a;
    rows.set(a.name, row);
  }
  const heads = ['Agent', 'Expected', 'Precision (live)', 'Recall (live)'];
  if (proposed) heads.push('Precision (draft)', 'Recall (draft)');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id: 'lab-agents', class: 'agents-table' },
      h('caption', { class: 'visually-hidden' }, 'Precision and recall per agent'),
      h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        [...rows.values()].map((r) => {
          const cells = [
            h('th', { scope: 'row' }, r.name),
            h('td', { 'data-label': heads[1] }, num(r.support)),
            h('td', { 'data-label': heads[2] }, percent(r.live?.precision)),
            h('td', { 'data-label': heads[3] }, percent(r.live?.recall)),
          ];
          if (proposed) {
            cells.push(h('td', { 'data-label': heads[4] }, percent(r.draft?.precision)), h('td', { 'data-label': heads[5] }, percent(r.draft?.recall)));
          }
          return h('tr', {}, cells);
        }),
      ),
    ),
  );
}

function calibrationChart(live, proposed) {
  const bins = live.calibration.map((b, i) => ({ live: b, draft: proposed?.calibration[i] }));
  const series = [{ name: 'live', className: 's1' }];
  if (proposed) series.push({ name: 'draft', className: 's2' });
  return barChart({
    id: 'lab-calibration',
    title: 'Accuracy by routing confidence (a well calibrated router is right as often as it is confident)',
    rows: bins
      .filter((b) => b.live.decisions > 0 || (b.draft && b.draft.decisions > 0))
      .map((b) => ({
        label: `${b.live.confidence_from.toFixed(1)}–${b.live.confidence_to.toFixed(1)} (${b.live.decisions}${proposed ? ` / ${b.draft.decisions}` : ''})`,
        values: proposed ? [b.live.accuracy, b.draft.accuracy] : [b.live.accuracy],
      })),
    series,
    format: (v) => percent(v),
  });
}

function misroutedTable(evaluation, caption) {
  if (evaluation.misrouted.length === 0) return h('p', { id: 'lab-misrouted', class: 'empty' }, 'Every message went where its label says.');
  const heads = ['Confidence', 'Message', 'Expected', 'Chosen', 'Why'];
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id: 'lab-misrouted', class: 'agents-table' },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        evaluation.misrouted.map((m) =>
          h(
            'tr',
            {},
            h('td', { 'data-label': heads[0] }, percent(m.confidence)),
            h('td', { 'data-label': heads[1] }, m.message),
            h('td', { 'data-label': heads[2] }, m.expected),
            h('td', { 'data-label': heads[3] }, m.got),
            h('td', { 'data-label': heads[4] }, m.reason),
          ),
        ),
      ),
    ),
  );
}

function agentName(a) {
  if (a.name) return a.name;
  return a.agent_id ? `(deleted ${String(a.agent_id).slice(0, 8)})` : '(none)';
}

function replaySection(replay) {
  const heads = ['From', 'To', 'Turns'];
  return h(
    'section',
    { id: 'lab-replay', 'aria-labelledby': 'lab-replay-title' },
    h('h2', { id: 'lab-replay-title' }, 'Replay on the stored turns'),
    h('p', { id: 'lab-replay-summary' }, `Of the last ${num(replay.turns)} turns, ${num(replay.changed)} would go to another agent with the draft.`),
    replay.changes.length === 0
      ? null
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { id: 'lab-replay-changes', class: 'agents-table' },
            h('caption', { class: 'visually-hidden' }, 'Turns that would move'),
            h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
            h(
              'tbody',
              {},
              replay.changes.map((c) =>
                h('tr', {}, h('td', { 'data-label': 'From' }, agentName(c.from)), h('td', { 'data-label': 'To' }, agentName(c.to)), h('td', { 'data-label': 'Turns' }, num(c.count))),
              ),
            ),
          ),
        ),
  );
}

/** The routing lab page. */
export function labView(ctx) {
  const heading = h('h1', { id: 'lab-title', tabindex: '-1' }, 'Routing lab');
  const intro = h(
    'p',
    { class: 'hint' },
    'Measure routing on messages whose right agent you know, and see what a change to the agents would do before you make it. Nothing is saved until you apply the draft.',
  );

  // ----- the labelled messages -----
  const csv = h('textarea', { id: 'lab-csv', rows: '8', spellcheck: 'false', class: 'mono', placeholder: 'message,agent\n"I was charged twice",billing\n"will it rain tomorrow",fallback' });
  const file = h('input', { id: 'lab-file', type: 'file', accept: '.csv,text/csv,text/plain' });
  file.addEventListener('change', async () => {
    const chosen = file.files && file.files[0];
    if (chosen) csv.value = await chosen.text();
  });
  const last = h('input', { id: 'lab-last', type: 'number', min: '1', max: '10000', step: '1', value: '1000' });

  // ----- the draft -----
  let agents = [];
  const draft = { add: [], update: new Map() };
  const target = h('select', { id: 'lab-draft-agent' });
  const dName = h('input', { id: 'lab-draft-name', maxlength: '64', autocomplete: 'off' });
  const dDescription = h('textarea', { id: 'lab-draft-description', rows: '2', maxlength: '2000' });
  const dKeywords = h('input', { id: 'lab-draft-keywords', autocomplete: 'off' });
  const dExamples = h('textarea', { id: 'lab-draft-examples', rows: '4' });
  const nameField = field('Name of the new agent', dName, 'It is added as an echo agent when you apply; set its kind on the Agents page afterwards.');
  const keep = h('button', { id: 'lab-draft-keep', type: 'button', class: 'secondary' }, 'Keep in draft');
  const draftError = h('div', { id: 'lab-draft-error' });
  const draftList = h('ul', { id: 'lab-draft-list', class: 'draft-list' });
  const apply = h('button', { id: 'lab-apply', type: 'button', disabled: true }, 'Apply draft');
  const status = h('div', { id: 'lab-status', role: 'status' });

  function fillTarget() {
    const current = target.value;
    target.replaceChildren(h('option', { value: NEW }, 'A new agent'), ...agents.map((a) => h('option', { value: a.id }, `${a.name}${a.enabled ? '' : ' (disabled)'}`)));
    target.value = agents.some((a) => a.id === current) ? current : NEW;
  }

  function loadTarget() {
    const agent = agents.find((a) => a.id === target.value);
    const pending = agent && draft.update.get(agent.id);
    nameField.hidden = Boolean(agent);
    dName.value = agent ? agent.name : '';
    dDescription.value = pending?.description ?? agent?.description ?? '';
    dKeywords.value = (pending?.keywords ?? agent?.keywords ?? []).join(', ');
    dExamples.value = (pending?.examples ?? agent?.examples ?? []).join('\n');
  }

  function drawDraft() {
    const items = [
      ...draft.add.map((a, i) => ({ text: `Add the agent “${a.name}” (${a.examples.length} examples)`, drop: () => draft.add.splice(i, 1) })),
      ...[...draft.update].map(([id, change]) => ({
        text: `Change “${agents.find((a) => a.id === id)?.name ?? id}”: ${Object.keys(change).join(', ')}`,
        drop: () => draft.update.delete(id),
      })),
    ];
    // replaceChildren takes nodes, not an array of them.
    draftList.replaceChildren(
      ...(items.length === 0
        ? [h('li', { class: 'empty' }, 'The draft is empty: the lab measures the live agents.')]
        : items.map((item) =>
            h(
              'li',
              {},
              h('span', {}, item.text),
              ' ',
              h('button', {
                type: 'button',
                class: 'link',
                'aria-label': `Drop from the draft: ${item.text}`,
                onclick: () => {
                  item.drop();
                  drawDraft();
                  focus(keep);
                },
              }, 'Drop'),
            ),
          )),
    );
    apply.disabled = items.length === 0;
  }

  function draftBody() {
    if (draft.add.length === 0 && draft.update.size === 0) return null;
    return { add: draft.add, update: [...draft.update].map(([id, change]) => ({ id, ...change })) };
  }

  keep.addEventListener('click', () => {
    draftError.replaceChildren();
    const agent = agents.find((a) => a.id === target.value);
    const examples = splitList(dExamples.value, '\n');
    const keywords = splitList(dKeywords.value, ',');
    const description = dDescription.value.trim();
    if (!agent) {
      const name = dName.value.trim();
      if (!name) {
        draftError.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, 'Give the new agent a name.'));
        focus(dName);
        return;
      }
      const body = { name, description, kind: 'echo', intents: [name], keywords, examples };
      const i = draft.add.findIndex((a) => a.name === name);
      if (i >= 0) draft.add[i] = body;
      else draft.add.push(body);
    } else {
      const change = {};
      if (description !== agent.description) change.description = description;
      if (JSON.stringify(keywords) !== JSON.stringify(agent.keywords)) change.keywords = keywords;
      if (JSON.stringify(examples) !== JSON.stringify(agent.examples)) change.examples = examples;
      if (Object.keys(change).length === 0) draft.update.delete(agent.id);
      else draft.update.set(agent.id, change);
    }
    drawDraft();
    ctx.announce('Kept in the draft.');
  });
  target.addEventListener('change', loadTarget);

  const run = h('button', { id: 'lab-run', type: 'submit' }, 'Evaluate');
  const output = h('div', { id: 'lab-output', 'aria-live': 'polite' });
  const form = h(
    'form',
    { id: 'lab-form', class: 'panel', 'aria-labelledby': 'lab-messages-title', novalidate: true },
    h('h2', { id: 'lab-messages-title' }, 'Labelled messages'),
    field('Messages and their agents (CSV)', csv, 'One row per line: the message, a comma, the agent (a name, an id, or fallback). Quote a message that holds a comma.'),
    field('Or upload a CSV file', file),
    h('h2', { id: 'lab-draft-title' }, 'Draft'),
    field('Agent to change', target),
    nameField,
    field('Description', dDescription),
    field('Keywords', dKeywords, 'Comma-separated.'),
    field('Examples', dExamples, 'One message per line.'),
    h('div', { class: 'actions' }, keep),
    draftError,
    draftList,
    field('Turns to replay', last, 'The draft is also tried on this many of the latest stored turns (at most 10,000).'),
    h('div', { class: 'actions' }, run, apply),
    status,
  );

  async function evaluate() {
    status.replaceChildren();
    run.disabled = true;
    output.setAttribute('aria-busy', 'true');
    try {
      const body = { csv: csv.value };
      const agentsDraft = draftBody();
      // One after another: the server runs one lab request at a time.
      const settle = (p) => p.then((value) => ({ status: 'fulfilled', value }), (reason) => ({ status: 'rejected', reason }));
      const settled = [await settle(api('POST', '/v1/routing/evaluate', body))];
      settled.push(agentsDraft ? await settle(api('POST', '/v1/routing/evaluate', { ...body, agents: agentsDraft })) : { status: 'fulfilled', value: null });
      settled.push(agentsDraft ? await settle(api('POST', '/v1/routing/replay', { agents: agentsDraft, last: Number(last.value) || 1000 })) : { status: 'fulfilled', value: null });
      // With a draft, the live agents may not have an agent the labels name (one the draft
      // adds): the draft's figures still stand, and the live column says why it is empty.
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed && (!agentsDraft || settled[1].status === 'rejected' || settled[0].reason?.status !== 422)) throw failed.reason;
      if (settled[2].status === 'rejected') throw settled[2].reason;
      const [liveResult, proposed, replay] = settled.map((s) => (s.status === 'fulfilled' ? s.value : null));
      const live = liveResult || { ...proposed, by_agent: [], calibration: proposed.calibration.map((b) => ({ ...b, decisions: 0, accuracy: null })) };
      const shown = proposed || live;
      const which = proposed ? 'with the draft' : 'live';
      const liveNote = liveResult ? null : h('div', { id: 'lab-live-note', class: 'notice warn' }, `Live agents: ${settled[0].reason.detail}`);
      const parts = [
        liveNote,
        h(
          'dl',
          { id: 'lab-summary', class: 'figures-grid' },
          liveResult ? figure('Routed right (live)', outOf(live), 'lab-accuracy-live') : null,
          proposed ? figure('Routed right (draft)', outOf(proposed), 'lab-accuracy-draft') : null,
          liveResult ? figure('Sent to the fallback (live)', percent(live.fallback_rate), 'lab-fallback-live') : null,
          proposed ? figure('Sent to the fallback (draft)', percent(proposed.fallback_rate), 'lab-fallback-draft') : null,
        ),
        agentTable(live, proposed),
        heatMap(shown, `Where messages went, ${which}`),
        h('div', { class: 'charts' }, calibrationChart(live, proposed)),
        misroutedTable(shown, `Misrouted messages, ${which}, the most confident first`),
        replay ? replaySection(replay) : null,
      ];
      // replaceChildren would show a null as the text "null".
      output.replaceChildren(...parts.filter(Boolean));
      const said = [liveResult ? `${percent(live.accuracy)} live` : null, proposed ? `${percent(proposed.accuracy)} with the draft` : null].filter(Boolean);
      ctx.announce(`Routed right: ${said.join(', ')}.`);
    } catch (error) {
      output.replaceChildren(errorBox(error, 'lab'));
    } finally {
      run.disabled = false;
      output.setAttribute('aria-busy', 'false');
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    evaluate();
  });

  apply.addEventListener('click', async () => {
    const body = draftBody();
    if (!body) return;
    apply.disabled = true;
    status.replaceChildren();
    try {
      for (const agent of body.add) await api('POST', '/v1/agents', agent);
      for (const { id, ...change } of body.update) await api('PATCH', `/v1/agents/${encodeURIComponent(id)}`, change);
      const summary = `Applied: ${body.add.length} added, ${body.update.length} changed.`;
      draft.add = [];
      draft.update.clear();
      ctx.agentsChanged();
      await loadAgents();
      drawDraft();
      status.replaceChildren(h('div', { class: 'notice ok' }, summary));
      ctx.announce(summary);
    } catch (error) {
      status.replaceChildren(errorBox(error, 'lab'));
      apply.disabled = false;
    }
  });

  async function loadAgents() {
    try {
      agents = await listAll('/v1/agents?limit=100');
      fillTarget();
      loadTarget();
    } catch (error) {
      status.replaceChildren(errorBox(error, 'lab'));
    }
  }

  fillTarget();
  loadTarget();
  drawDraft();
  loadAgents();
  const view = h('section', { id: 'lab-view', class: 'view', 'aria-labelledby': 'lab-title' }, heading, intro, form, output);
  return { element: view, focusTarget: heading };
}
