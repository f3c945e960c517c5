// The routing decision, shown the same way for a streamed answer, a stored turn and the
// admins' "try routing" box: which agent, for which intent and how sure, how it was
// decided, the fallback or failover if any, and the runners-up.

import { h, percent, num } from './dom.js';

const METHODS = {
  pinned: 'pinned by the request',
  sticky: 'follow-up kept with the same agent',
  lexical: 'best keyword match',
  embedding: 'best semantic match',
  llm: 'chosen by the language model',
  fallback: 'nothing was clear enough, or the message is like the fallback agent’s own examples: fallback agent',
};

/**
 * A routing card from `{agent: {id, name}, intent: {category, confidence, keywords},
 * routing: {method, confidence, margin, fallback_used, failover_from, skipped, reason,
 * alternatives}}`. `lead` is the phrase before the agent's name.
 */
export function routingCard(decision, { lead = 'Answered by', pending = false } = {}) {
  const agent = decision.agent || {};
  const intent = decision.intent || {};
  const routing = decision.routing || {};
  const skipped = Array.isArray(routing.skipped) ? routing.skipped : [];
  // An agent passed over as unavailable is told as such, not as a failed call.
  const failover =
    routing.failover_from && !skipped.some((s) => s.agent_id === routing.failover_from.agent_id) ? routing.failover_from : null;
  const badges = [];
  if (routing.method) {
    badges.push(h('span', { class: 'badge method', title: METHODS[routing.method] || '' }, routing.method));
  }
  if (routing.fallback_used) badges.push(h('span', { class: 'badge fallback' }, 'fallback'));
  if (skipped.length > 0) badges.push(h('span', { class: 'badge skipped' }, 'skipped'));
  if (failover) badges.push(h('span', { class: 'badge failover' }, 'failover'));
  if (pending) badges.push(h('span', { class: 'badge pending' }, 'answering…'));

  const main = h(
    'p',
    { class: 'routing-main' },
    h('span', { class: 'label' }, `${lead} `),
    h('strong', { class: 'agent-name' }, agent.name || 'an unknown agent'),
    h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '),
    h('span', { class: 'label' }, 'intent '),
    h('span', { class: 'intent' }, intent.category || 'none'),
    ' ',
    // The intent shown is the answering agent's; when the analysis guessed another, its
    // confidence belongs to that guess, and says so.
    routing.guessed_intent
      ? h('span', { class: 'guess' }, '(analysis: ', h('span', { class: 'guessed-intent' }, routing.guessed_intent), ' ', h('span', { class: 'confidence', title: 'intent confidence' }, percent(intent.confidence)), ')')
      : h('span', { class: 'confidence', title: 'intent confidence' }, percent(intent.confidence)),
    ' ',
    badges,
  );

  const parts = [main];
  if (skipped.length > 0) {
    parts.push(
      h(
        'p',
        { class: 'skipped-note' },
        'Passed over: ',
        skipped.map((s, i) => [i > 0 ? '; ' : '', h('strong', {}, s.name || 'an agent'), ` (${s.reason || 'unavailable'})`]),
        ' — ',
        h('strong', {}, agent.name || 'another agent'),
        pending ? ' answers instead.' : lead === 'Answered by' ? ' answered instead.' : ' instead.',
      ),
    );
  }
  if (failover) {
    parts.push(
      h(
        'p',
        { class: 'failover-note' },
        `Failover: ${failover.name || 'an agent'} could not answer (${failover.error || 'error'}); `,
        h('strong', {}, agent.name || 'another agent'),
        ' answered instead.',
      ),
    );
  }

  const details = [];
  if (routing.reason) details.push(h('p', { class: 'reason' }, routing.reason));
  details.push(
    h(
      'p',
      { class: 'figures' },
      `Routing confidence ${percent(routing.confidence)}, margin ${num(routing.margin, 2)}`,
      routing.method ? ` — ${METHODS[routing.method] || routing.method}.` : '.',
    ),
  );
  if (Array.isArray(intent.keywords) && intent.keywords.length > 0) {
    details.push(h('p', { class: 'keywords' }, `Keywords: ${intent.keywords.join(', ')}`));
  }
  const alternatives = Array.isArray(routing.alternatives) ? routing.alternatives : [];
  if (alternatives.length > 0) {
    details.push(
      h('p', { class: 'alt-title' }, 'Alternatives:'),
      h(
        'ul',
        { class: 'alternatives' },
        alternatives.map((alt) =>
          h('li', {}, h('span', { class: 'alt-name' }, alt.name || alt.agent_id || '?'), ` ${percent(alt.score)}`),
        ),
      ),
    );
  } else {
    details.push(h('p', { class: 'alt-title' }, 'No other candidate.'));
  }
  parts.push(h('details', { class: 'routing-details' }, h('summary', {}, 'Why this agent'), details));
  return h('div', { class: 'routing', role: 'group', 'aria-label': 'Routing decision' }, parts);
}
