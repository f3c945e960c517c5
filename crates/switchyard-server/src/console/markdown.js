// Markdown in agents' answers, rendered safely: a small subset (paragraphs and line breaks,
// headings, lists, code blocks, `code`, **bold**, *italic*, [links](https://…)) built as
// DOM nodes with text in text nodes only. HTML in an answer stays text, and a link is made
// only for an http(s) address; nothing an agent writes can become markup or script.

import { h } from './dom.js';

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(__[^_\n]+__)|(\*[^*\n]+\*)|(_[^_\n]+_)|(\[[^\]\n]+\]\([^)\s]+\))/;

/** The nodes of one line's inline Markdown. */
function inline(text) {
  const out = [];
  let rest = text;
  for (;;) {
    const m = INLINE.exec(rest);
    if (!m) break;
    if (m.index > 0) out.push(rest.slice(0, m.index));
    const token = m[0];
    if (m[1]) {
      out.push(h('code', {}, token.slice(1, -1)));
    } else if (m[2] || m[3]) {
      out.push(h('strong', {}, ...inline(token.slice(2, -2))));
    } else if (m[4] || m[5]) {
      out.push(h('em', {}, ...inline(token.slice(1, -1))));
    } else {
      const close = token.indexOf('](');
      const label = token.slice(1, close);
      const href = token.slice(close + 2, -1);
      if (/^https?:\/\//i.test(href)) {
        out.push(h('a', { href, rel: 'noopener noreferrer nofollow', target: '_blank' }, ...inline(label)));
      } else {
        out.push(token);
      }
    }
    rest = rest.slice(m.index + token.length);
  }
  if (rest) out.push(rest);
  return out;
}

/** Lines joined with line breaks. */
function lines(parts) {
  return parts.flatMap((line, i) => (i === 0 ? inline(line) : [h('br'), ...inline(line)]));
}

const LIST_ITEM = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/;

/** `text` as Markdown: a list of block elements. */
export function markdown(text) {
  const blocks = [];
  const all = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < all.length) {
    const line = all[i];
    if (/^\s*```/.test(line)) {
      const code = [];
      i += 1;
      while (i < all.length && !/^\s*```/.test(all[i])) {
        code.push(all[i]);
        i += 1;
      }
      i += 1;
      blocks.push(h('pre', {}, h('code', {}, code.join('\n'))));
      continue;
    }
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      blocks.push(h(`h${Math.min(6, heading[1].length + 2)}`, { class: 'md-heading' }, ...inline(heading[2])));
      i += 1;
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      const ordered = /\d/.test(item[1]);
      const items = [];
      while (i < all.length) {
        const next = LIST_ITEM.exec(all[i]);
        if (!next || /\d/.test(next[1]) !== ordered) break;
        items.push(h('li', {}, ...inline(next[2])));
        i += 1;
      }
      blocks.push(h(ordered ? 'ol' : 'ul', {}, items));
      continue;
    }
    const paragraph = [];
    while (i < all.length && all[i].trim() && !/^\s*```/.test(all[i]) && !/^#{1,6}\s/.test(all[i]) && !LIST_ITEM.test(all[i])) {
      paragraph.push(all[i]);
      i += 1;
    }
    blocks.push(h('p', {}, ...lines(paragraph)));
  }
  return blocks;
}
