// Agents (admins): the tenant's agents, a form to create or edit one, enable/disable, and a
// "try routing" box that asks /v1/route which agent a message would go to.

import { api, listAll } from './api.js';
import { h, field, focus, confirmInPlace } from './dom.js';
import { errorBox } from './chat.js';
import { routingCard } from './routing.js';

const CONFIG_EXAMPLES = {
  echo: { template: '{agent}: {message}' },
  http: { url: 'https://agent.example/answer', timeout_ms: 10000 },
  openai: { base_url: 'https://api.example/v1', model: 'model-name', api_key_env: 'OPENAI_API_KEY' },
  a2a: { url: 'https://agent.example/a2a' },
};

const splitList = (text, sep) =>
  text
    .split(sep)
    .map((s) => s.trim())
    .filter(Boolean);

const CIRCUITS = { closed: 'healthy', open: 'down (passed over)', half_open: 'recovering (next call is a trial)' };

/** An agent's health in a few words: its circuit, and its last error if it failed lately. */
function healthText(health) {
  if (!health) return '—';
  const parts = [h('span', { class: `circuit ${health.state}` }, CIRCUITS[health.state] || health.state)];
  if (health.consecutive_failures > 0) {
    parts.push(h('span', { class: 'health-error' }, `${health.consecutive_failures} failed in a row: ${health.last_error || 'error'}`));
  }
  return parts;
}

/** The agents page; `ctx.agentsChanged()` is called after a change. */
export function agentsView(ctx) {
  const heading = h('h1', { id: 'agents-title', tabindex: '-1' }, 'Agents');
  const newButton = h('button', { id: 'new-agent', type: 'button' }, 'New agent');
  const status = h('div', { id: 'agents-status' });
  const tbody = h('tbody');
  const table = h(
    'table',
    { id: 'agents-table', class: 'agents-table' },
    h('caption', { class: 'visually-hidden' }, 'Agents of the tenant'),
    h(
      'thead',
      {},
      h('tr', {}, ['Name', 'Kind', 'Intents', 'Status', 'Health', 'Priority', 'Actions'].map((t) => h('th', { scope: 'col' }, t))),
    ),
    tbody,
  );

  // ----- the form -----
  const name = h('input', { id: 'agent-name', required: true, maxlength: '64', autocomplete: 'off' });
  const description = h('textarea', { id: 'agent-description', rows: '2', maxlength: '2000' });
  const kind = h('select', { id: 'agent-kind' }, Object.keys(CONFIG_EXAMPLES).map((k) => h('option', { value: k }, k)));
  const config = h('textarea', { id: 'agent-config', rows: '4', spellcheck: 'false', class: 'mono' });
  const intents = h('input', { id: 'agent-intents', autocomplete: 'off' });
  const keywords = h('input', { id: 'agent-keywords', autocomplete: 'off' });
  const examples = h('textarea', { id: 'agent-examples', rows: '3' });
  const priority = h('input', { id: 'agent-priority', type: 'number', min: '-1000', max: '1000', step: '1', value: '0' });
  const enabled = h('input', { id: 'agent-enabled', type: 'checkbox', checked: true });
  const fallback = h('input', { id: 'agent-fallback', type: 'checkbox' });
  const formTitle = h('h2', { id: 'agent-form-title', tabindex: '-1' }, 'New agent');
  const formError = h('div', { id: 'agent-form-error' });
  const save = h('button', { id: 'agent-save', type: 'submit' }, 'Save');
  const cancel = h('button', { id: 'agent-cancel', type: 'button', class: 'secondary' }, 'Cancel');
  const form = h(
    'form',
    { id: 'agent-form', class: 'panel agent-form', 'aria-labelledby': 'agent-form-title', hidden: true, novalidate: true },
    formTitle,
    formError,
    field('Name', name),
    field('Description', description, 'What the agent does; routing reads it.'),
    field('Kind', kind),
    field('Configuration (JSON)', config, 'Secrets show as *** and are kept unless you replace them.'),
    field('Intents', intents, 'Comma-separated labels, e.g. billing, refunds.'),
    field('Keywords', keywords, 'Comma-separated words that point to this agent.'),
    field('Examples', examples, 'Sample messages, one per line.'),
    field('Priority', priority, 'Breaks ties between equally good agents (higher wins).'),
    h('div', { class: 'field check' }, enabled, h('label', { for: 'agent-enabled' }, 'Enabled (takes part in routing)')),
    h('div', { class: 'field check' }, fallback, h('label', { for: 'agent-fallback' }, 'Fallback (answers when nothing else fits)')),
    h('div', { class: 'actions' }, save, cancel),
  );
  let editing = null; // the agent being edited, or null for a new one

  function openForm(agent) {
    editing = agent;
    formTitle.textContent = agent ? `Edit ${agent.name}` : 'New agent';
    name.value = agent ? agent.name : '';
    description.value = agent ? agent.description : '';
    kind.value = agent ? agent.kind : 'echo';
    config.value = JSON.stringify(agent ? agent.config : CONFIG_EXAMPLES.echo, null, 2);
    intents.value = agent ? agent.intents.join(', ') : '';
    keywords.value = agent ? agent.keywords.join(', ') : '';
    examples.value = agent ? agent.examples.join('\n') : '';
    priority.value = String(agent ? agent.priority : 0);
    enabled.checked = agent ? agent.enabled : true;
    fallback.checked = agent ? agent.is_fallback : false;
    formError.replaceChildren();
    form.hidden = false;
    focus(name);
  }

  function closeForm() {
    form.hidden = true;
    editing = null;
    focus(newButton);
  }

  kind.addEventListener('change', () => {
    // Offer the new kind's settings unless the admin already wrote their own.
    const current = config.value.trim();
    const isExample = current === '' || Object.values(CONFIG_EXAMPLES).some((c) => JSON.stringify(c, null, 2) === current);
    if (isExample) config.value = JSON.stringify(CONFIG_EXAMPLES[kind.value], null, 2);
  });
  newButton.addEventListener('click', () => openForm(null));
  cancel.addEventListener('click', closeForm);
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closeForm();
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formError.replaceChildren();
    if (!name.value.trim()) {
      formError.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, 'Give the agent a name.'));
      focus(name);
      return;
    }
    let parsedConfig;
    try {
      parsedConfig = config.value.trim() ? JSON.parse(config.value) : {};
      if (parsedConfig === null || typeof parsedConfig !== 'object' || Array.isArray(parsedConfig)) throw new Error('not an object');
    } catch {
      formError.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, 'The configuration must be a JSON object, e.g. {"url": "https://…"}.'));
      focus(config);
      return;
    }
    const body = {
      name: name.value.trim(),
      description: description.value.trim(),
      kind: kind.value,
      config: parsedConfig,
      intents: splitList(intents.value, ','),
      keywords: splitList(keywords.value, ','),
      examples: splitList(examples.value, '\n'),
      priority: Number.parseInt(priority.value, 10) || 0,
      enabled: enabled.checked,
      is_fallback: fallback.checked,
    };
    save.disabled = true;
    try {
      if (editing) {
        await api('PATCH', `/v1/agents/${encodeURIComponent(editing.id)}`, body);
        ctx.announce(`Agent ${body.name} saved.`);
      } else {
        await api('POST', '/v1/agents', body);
        ctx.announce(`Agent ${body.name} created.`);
      }
      ctx.agentsChanged();
      form.hidden = true;
      editing = null;
      await load();
      focus(newButton);
    } catch (error) {
      formError.replaceChildren(errorBox(error, 'agent'));
    } finally {
      save.disabled = false;
    }
  });

  function row(agent) {
    const toggle = h(
      'button',
      { type: 'button', class: 'secondary toggle-agent', 'aria-label': `${agent.enabled ? 'Disable' : 'Enable'} ${agent.name}` },
      agent.enabled ? 'Disable' : 'Enable',
    );
    const edit = h('button', { type: 'button', class: 'secondary edit-agent', 'aria-label': `Edit ${agent.name}` }, 'Edit');
    toggle.addEventListener('click', async () => {
      toggle.disabled = true;
      status.replaceChildren();
      try {
        await api('PATCH', `/v1/agents/${encodeURIComponent(agent.id)}`, { enabled: !agent.enabled });
        ctx.announce(`Agent ${agent.name} ${agent.enabled ? 'disabled' : 'enabled'}.`);
        ctx.agentsChanged();
        await load();
      } catch (error) {
        status.replaceChildren(errorBox(error, 'agent'));
        toggle.disabled = false;
      }
    });
    edit.addEventListener('click', () => openForm(agent));
    const remove = h('button', { type: 'button', class: 'secondary delete-agent', 'aria-label': `Delete ${agent.name}` }, 'Delete');
    remove.addEventListener('click', () =>
      confirmInPlace(remove, `Delete ${agent.name}? Turns it answered keep their record of it.`, 'Delete', async () => {
        status.replaceChildren();
        try {
          await api('DELETE', `/v1/agents/${encodeURIComponent(agent.id)}`);
          ctx.announce(`Agent ${agent.name} deleted.`);
          ctx.agentsChanged();
          await load();
          focus(newButton);
        } catch (error) {
          status.replaceChildren(errorBox(error, 'agent'));
        }
      }),
    );
    const test = h('button', { type: 'button', class: 'secondary test-agent', 'aria-label': `Test ${agent.name}` }, 'Test');
    const testResult = h('span', { class: 'test-result', 'aria-live': 'polite' });
    test.disabled = !agent.enabled;
    test.title = agent.enabled ? 'Send one test call (nothing is stored)' : 'Enable the agent to test it';
    test.addEventListener('click', async () => {
      test.disabled = true;
      testResult.replaceChildren('Testing…');
      try {
        const r = await api('POST', `/v1/agents/${encodeURIComponent(agent.id)}/test`, {});
        const took = `${Math.round(r.latency_ms)} ms`;
        testResult.replaceChildren(
          r.ok
            ? h('span', { class: 'test-ok' }, `Answered in ${took}`)
            : h('span', { class: 'test-failed' }, `Failed after ${took}: ${r.error}${r.status ? ` (HTTP ${r.status})` : ''}`),
        );
        ctx.announce(r.ok ? `${agent.name} answered the test call.` : `${agent.name} failed the test call.`);
        // The call counts in the agent's health: show it as it is now.
        const fresh = await api('GET', `/v1/agents/${encodeURIComponent(agent.id)}`);
        healthNow.replaceChildren(...[healthText(fresh.health)].flat());
      } catch (error) {
        testResult.replaceChildren(errorBox(error, 'agent'));
      } finally {
        test.disabled = !agent.enabled;
      }
    });
    const state = [agent.enabled ? 'enabled' : 'disabled', agent.is_fallback ? 'fallback' : null].filter(Boolean).join(', ');
    const healthNow = h('span', { class: 'health-now' }, healthText(agent.health));
    const healthCell = h('td', { 'data-label': 'Health', class: 'agent-health' }, healthNow, testResult);
    return h(
      'tr',
      { class: agent.enabled ? 'agent' : 'agent disabled', dataset: { name: agent.name, id: agent.id } },
      h('th', { scope: 'row', 'data-label': 'Name' }, h('span', { class: 'agent-title' }, agent.name), agent.description ? h('span', { class: 'agent-desc' }, agent.description) : null),
      h('td', { 'data-label': 'Kind' }, agent.kind),
      h('td', { 'data-label': 'Intents' }, agent.intents.join(', ') || '—'),
      h('td', { 'data-label': 'Status', class: 'agent-status' }, state),
      healthCell,
      h('td', { 'data-label': 'Priority' }, String(agent.priority)),
      h('td', { 'data-label': 'Actions', class: 'row-actions' }, edit, toggle, test, remove),
    );
  }

  async function load() {
    try {
      const agents = await listAll('/v1/agents?limit=100');
      tbody.replaceChildren(...agents.map(row));
      if (agents.length === 0) {
        status.replaceChildren(h('p', { class: 'empty' }, 'No agents yet: create the first one.'));
      } else if (!status.querySelector('[role=alert]')) {
        status.replaceChildren();
      }
    } catch (error) {
      status.replaceChildren(errorBox(error, 'agents'));
    }
  }

  // ----- try routing -----
  const routeInput = h('input', { id: 'route-message', autocomplete: 'off', required: true, maxlength: '32768' });
  const routeButton = h('button', { id: 'route-submit', type: 'submit' }, 'Route');
  const routeResult = h('div', { id: 'route-result', 'aria-live': 'polite' });
  const routeForm = h(
    'form',
    { id: 'route-form', class: 'panel', 'aria-labelledby': 'route-title' },
    h('h2', { id: 'route-title' }, 'Try routing'),
    h('p', { class: 'hint' }, 'Which agent would answer a message? Nothing is sent to an agent or stored.'),
    h('label', { for: 'route-message' }, 'Message'),
    h('div', { class: 'composer-row' }, routeInput, routeButton),
    routeResult,
  );
  routeForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const message = routeInput.value.trim();
    if (!message) return;
    routeButton.disabled = true;
    try {
      const decision = await api('POST', '/v1/route', { message });
      routeResult.replaceChildren(routingCard(decision, { lead: 'Would go to' }));
    } catch (error) {
      routeResult.replaceChildren(errorBox(error, 'route'));
    } finally {
      routeButton.disabled = false;
    }
  });

  load();
  const view = h(
    'section',
    { id: 'agents-view', class: 'view', 'aria-labelledby': 'agents-title' },
    h('div', { class: 'view-head' }, heading, newButton),
    status,
    form,
    h('div', { class: 'table-wrap' }, table),
    routeForm,
  );
  return { element: view, focusTarget: heading };
}
