// Chat: the current conversation's turns, the composer, and streamed answers with their
// routing decision.

import { api, chatStream, describe, listAll } from './api.js';
import { h, focus, when } from './dom.js';
import { routingCard } from './routing.js';
import { markdown } from './markdown.js';

/** An error box inside the page (role=alert, so screen readers say it at once). */
export function errorBox(error, context) {
  const { title, detail } = describe(error, context);
  return h('div', { class: 'notice error', role: 'alert' }, h('strong', {}, title), ' ', detail);
}

function turnElement(userText) {
  const answer = h('div', { class: 'answer' });
  const meta = h('div', { class: 'meta' });
  const agent = h('div', { class: 'msg agent' }, meta, answer);
  const li = h(
    'li',
    { class: 'turn' },
    h('div', { class: 'msg user' }, h('span', { class: 'visually-hidden' }, 'You: '), h('p', { class: 'text' }, userText)),
    agent,
  );
  return { li, answer, meta, agent };
}

/** A stored turn (from the history). */
function storedTurn(turn, names) {
  const { li, answer, meta } = turnElement(turn.user_message);
  answer.replaceChildren(...markdown(turn.agent_response ?? ''));
  const routing = turn.routing && typeof turn.routing === 'object' ? turn.routing : {};
  const id = turn.selected_agent_id;
  meta.append(
    routingCard({
      agent: { id, name: (id && names.get(id)) || routing.legacy_agent || (id ? `agent ${id.slice(0, 8)}` : 'unknown agent') },
      intent: { category: turn.intent_category, confidence: turn.intent_confidence, keywords: [] },
      routing,
    }),
    h('p', { class: 'when' }, when(turn.created_at)),
  );
  return li;
}

/**
 * The chat page; `conversationId` continues a stored conversation. `ctx` gives
 * `agentNames()` and `announce(text)`.
 */
export function chatView(ctx, conversationId) {
  let current = conversationId || null;
  let busy = false;

  const heading = h('h1', { id: 'chat-title', tabindex: '-1' }, current ? 'Conversation' : 'New conversation');
  const newButton = h('button', { id: 'new-conversation', type: 'button', class: 'secondary' }, 'New conversation');
  const log = h('ol', { id: 'messages', class: 'messages', 'aria-live': 'polite', 'aria-relevant': 'additions text', 'aria-label': 'Messages' });
  const empty = h('p', { id: 'chat-empty', class: 'empty' }, 'Ask anything: Switchyard picks the agent of your organisation that fits best, and shows why.');
  const status = h('div', { id: 'chat-status' });
  const input = h('textarea', {
    id: 'message',
    name: 'message',
    rows: '2',
    required: true,
    maxlength: '32768',
    autocomplete: 'off',
    'aria-describedby': 'composer-hint',
  });
  const send = h('button', { id: 'send', type: 'submit' }, 'Send');
  // While an agent answers: Stop (the page stops waiting; the turn goes on and is stored).
  const stop = h('button', { id: 'stop', type: 'button', class: 'secondary', hidden: true }, 'Stop');
  let stopping = null;
  stop.addEventListener('click', () => stopping?.abort());
  const form = h(
    'form',
    { id: 'composer', class: 'composer' },
    h('label', { for: 'message' }, 'Message'),
    h('div', { class: 'composer-row' }, input, send, stop),
    h('p', { id: 'composer-hint', class: 'hint' }, 'Enter sends; Shift+Enter starts a new line.'),
  );

  newButton.addEventListener('click', () => {
    if (location.hash === '#/chat') {
      current = null;
      log.replaceChildren();
      status.replaceChildren();
      empty.hidden = false;
      heading.textContent = 'New conversation';
      focus(input);
    } else {
      location.hash = '#/chat';
    }
  });

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const message = input.value.trim();
    if (!message || busy) return;
    busy = true;
    send.disabled = true;
    status.replaceChildren();
    empty.hidden = true;
    const turn = turnElement(message);
    turn.li.classList.add('streaming');
    turn.agent.setAttribute('aria-busy', 'true');
    turn.answer.textContent = '';
    turn.meta.replaceChildren(h('p', { class: 'routing pending' }, 'Choosing an agent…'));
    log.append(turn.li);
    input.value = '';
    turn.li.scrollIntoView({ block: 'end' });
    let streamed = '';
    let pieces = 0;
    let chosen = null;
    // The time the agent has taken so far, and at the end, the time it took.
    const started = performance.now();
    const seconds = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
    const elapsed = h('p', { class: 'elapsed', 'aria-hidden': 'true' }, `Waiting… ${seconds()}`);
    turn.agent.append(elapsed);
    const clock = setInterval(() => {
      elapsed.textContent = `Waiting… ${seconds()}`;
    }, 100);
    const controller = new AbortController();
    stopping = controller;
    stop.hidden = false;
    try {
      const body = { message };
      if (current) body.conversation_id = current;
      const done = await chatStream(body, {
        signal: controller.signal,
        routing: (decision) => {
          chosen = decision;
          turn.meta.replaceChildren(routingCard(decision, { pending: true }));
        },
        failover: (change) => {
          // The agent called failed before answering: say so at once, and who takes over.
          if (!chosen) return;
          chosen = {
            ...chosen,
            agent: change.to,
            routing: { ...chosen.routing, failover_from: chosen.routing?.failover_from || change.from },
          };
          turn.meta.replaceChildren(routingCard(chosen, { pending: true }));
        },
        delta: (text) => {
          streamed += text;
          pieces += 1;
          turn.answer.textContent = streamed;
        },
      });
      turn.answer.replaceChildren(...markdown(done.response ?? streamed));
      elapsed.textContent = `Answered in ${seconds()}`;
      turn.meta.replaceChildren(routingCard(done));
      turn.li.dataset.agent = done.agent?.name ?? '';
      // How many pieces arrived as they were written (the tests check the stream is used).
      turn.li.dataset.pieces = String(pieces);
      if (!current && done.conversation_id) {
        current = done.conversation_id;
        heading.textContent = message.length > 60 ? `${message.slice(0, 60)}…` : message;
        // Keep the address pointing at this conversation without reloading the page.
        history.replaceState(null, '', `#/chat/${encodeURIComponent(current)}`);
      }
      ctx.announce(`Answered by ${done.agent?.name ?? 'an agent'}.`);
    } catch (error) {
      if (controller.signal.aborted) {
        turn.li.classList.add('stopped');
        elapsed.textContent = `Stopped after ${seconds()}`;
        turn.meta.replaceChildren(...(chosen ? [routingCard(chosen, { lead: 'Routed to' })] : []));
        turn.agent.append(
          h('p', { id: 'stopped-note', class: 'notice warn', role: 'status' }, 'Stopped. The agent may still answer: its answer is then kept with this conversation.'),
        );
        ctx.announce('Stopped.');
      } else {
        turn.li.classList.add('failed');
        elapsed.textContent = `Failed after ${seconds()}`;
        // Keep the decision that was made: it says which agent failed.
        turn.meta.replaceChildren(...(chosen ? [routingCard(chosen, { lead: 'Routed to' })] : []));
        if (!streamed) turn.answer.replaceChildren();
        turn.agent.append(errorBox(error, 'chat'));
        if (!streamed) input.value = message;
      }
    } finally {
      clearInterval(clock);
      stop.hidden = true;
      stopping = null;
      turn.li.classList.remove('streaming');
      turn.agent.setAttribute('aria-busy', 'false');
      busy = false;
      send.disabled = false;
      if (document.body.contains(input)) focus(input);
      turn.li.scrollIntoView({ block: 'end' });
    }
  });

  const view = h(
    'section',
    { id: 'chat-view', class: 'view chat-view', 'aria-labelledby': 'chat-title' },
    h('div', { class: 'view-head' }, heading, newButton),
    status,
    empty,
    log,
    form,
  );

  if (current) {
    empty.hidden = true;
    log.setAttribute('aria-busy', 'true');
    status.replaceChildren(h('p', { class: 'loading' }, 'Loading the conversation…'));
    (async () => {
      try {
        const [conversation, names] = await Promise.all([
          api('GET', `/v1/conversations/${encodeURIComponent(current)}?limit=100`),
          ctx.agentNames(),
        ]);
        let turns = conversation.messages.items;
        if (conversation.messages.next_cursor) {
          const more = await listAll(`/v1/conversations/${encodeURIComponent(current)}/messages?limit=100`, {
            cursor: conversation.messages.next_cursor,
          });
          turns = turns.concat(more);
        }
        heading.textContent = conversation.title || 'Conversation';
        log.replaceChildren(...turns.map((t) => storedTurn(t, names)));
        status.replaceChildren();
      } catch (error) {
        status.replaceChildren(errorBox(error, 'conversation'));
        current = null;
      } finally {
        log.setAttribute('aria-busy', 'false');
      }
    })();
  }

  return { element: view, focusTarget: input };
}
