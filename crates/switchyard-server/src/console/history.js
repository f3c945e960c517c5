// History: the user's conversations, latest activity first, a page at a time.

import { api } from './api.js';
import { h, when, confirmInPlace, focus } from './dom.js';
import { errorBox } from './chat.js';

/** The conversation list; each entry opens the conversation in the chat page. */
export function historyView(ctx) {
  const heading = h('h1', { id: 'history-title', tabindex: '-1' }, 'History');
  const list = h('ul', { id: 'conversations', class: 'conversations', 'aria-labelledby': 'history-title' });
  const status = h('div', { id: 'history-status' });
  const more = h('button', { id: 'more-conversations', type: 'button', class: 'secondary', hidden: true }, 'Load more');
  let cursor = null;
  let names = new Map();

  function entry(c) {
    const agent = c.last_agent_id ? names.get(c.last_agent_id) : null;
    const facts = [
      `${c.message_count} ${c.message_count === 1 ? 'turn' : 'turns'}`,
      c.primary_intent ? `intent ${c.primary_intent}` : null,
      agent ? `last answered by ${agent}` : null,
      `last active ${when(c.last_activity)}`,
    ].filter(Boolean);
    const title = c.title || 'Untitled conversation';
    const remove = h('button', { type: 'button', class: 'secondary delete-conversation', 'aria-label': `Delete the conversation ${title}` }, 'Delete');
    const item = h(
      'li',
      { class: 'conversation', dataset: { id: c.id } },
      h('a', { href: `#/chat/${encodeURIComponent(c.id)}`, class: 'conversation-link' }, title),
      h('p', { class: 'facts' }, facts.join(' · ')),
      remove,
    );
    remove.addEventListener('click', () =>
      confirmInPlace(remove, 'Delete this conversation and its turns?', 'Delete', async () => {
        try {
          await api('DELETE', `/v1/conversations/${encodeURIComponent(c.id)}`);
          const next = item.nextElementSibling || item.previousElementSibling;
          item.remove();
          ctx.announce(`Conversation ${title} deleted.`);
          focus(next?.querySelector('a') || heading);
          if (list.children.length === 0) {
            status.replaceChildren(h('p', { id: 'no-conversations', class: 'empty' }, 'No conversations yet. ', h('a', { href: '#/chat' }, 'Start one'), '.'));
          }
        } catch (error) {
          status.replaceChildren(errorBox(error, 'history'));
        }
      }),
    );
    return item;
  }

  async function load() {
    more.disabled = true;
    status.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
    try {
      const url = cursor ? `/v1/conversations?limit=20&cursor=${encodeURIComponent(cursor)}` : '/v1/conversations?limit=20';
      const [page, agentNames] = await Promise.all([api('GET', url), ctx.agentNames()]);
      names = agentNames;
      list.append(...page.items.map(entry));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.replaceChildren();
      if (list.children.length === 0) {
        status.replaceChildren(
          h('p', { id: 'no-conversations', class: 'empty' }, 'No conversations yet. ', h('a', { href: '#/chat' }, 'Start one'), '.'),
        );
      }
    } catch (error) {
      status.replaceChildren(errorBox(error, 'history'));
    } finally {
      more.disabled = false;
    }
  }

  more.addEventListener('click', load);
  load();
  const view = h(
    'section',
    { id: 'history-view', class: 'view', 'aria-labelledby': 'history-title' },
    h('div', { class: 'view-head' }, heading, h('a', { href: '#/chat', class: 'button secondary' }, 'New conversation')),
    list,
    status,
    more,
  );
  return { element: view, focusTarget: heading };
}
