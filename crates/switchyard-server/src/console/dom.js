// Small DOM helpers. Text always goes in as text nodes (textContent), never as HTML, so
// nothing a user, an agent or another tenant wrote can become markup or script.

const SVG_NS = 'http://www.w3.org/2000/svg';

function setAttributes(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') {
      el.setAttribute('class', value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key.startsWith('on')) {
      // Only functions: an attribute named on* with a string would be inline script.
      if (typeof value === 'function') el.addEventListener(key.slice(2), value);
    } else if (key === 'value' && 'value' in el) {
      el.value = String(value);
    } else if (key === 'checked' && 'checked' in el) {
      el.checked = Boolean(value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: `h('p', {class: 'x'}, 'text', otherNode)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attrs);
  appendChildren(el, children);
  return el;
}

/** An SVG element, the same way. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttributes(el, attrs);
  appendChildren(el, children);
  return el;
}

let nextId = 0;
/** A unique element id with a readable prefix. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled form field: `{label, input, hint}` wrapped in a div. */
export function field(label, input, hint) {
  if (!input.id) input.id = uid('field');
  const parts = [h('label', { for: input.id }, label)];
  if (hint) {
    const hintId = `${input.id}-hint`;
    input.setAttribute('aria-describedby', hintId);
    parts.push(input, h('p', { class: 'hint', id: hintId }, hint));
  } else {
    parts.push(input);
  }
  return h('div', { class: 'field' }, parts);
}

/** A share in [0, 1] as a whole percentage, or a dash. */
export function percent(x) {
  return typeof x === 'number' && Number.isFinite(x) ? `${Math.round(x * 100)}%` : '—';
}

/** A number with at most `digits` decimals, or a dash. */
export function num(x, digits = 0) {
  return typeof x === 'number' && Number.isFinite(x)
    ? x.toLocaleString(undefined, { maximumFractionDigits: digits })
    : '—';
}

/** A timestamp in the reader's locale. */
export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

/** Puts the focus on `el` (making it focusable if it is not) without scrolling oddly. */
export function focus(el) {
  if (!el) return;
  if (!el.hasAttribute('tabindex') && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) {
    el.setAttribute('tabindex', '-1');
  }
  el.focus({ preventScroll: false });
}

/**
 * Asks for a confirmation in place of `button`: `question`, then `yes` (which runs
 * `onYes`) and Cancel (or Escape), which puts the button back. The focus goes to Cancel,
 * so that Enter pressed twice deletes nothing.
 */
export function confirmInPlace(button, question, yes, onYes) {
  const confirmButton = h('button', { type: 'button', class: 'danger confirm-yes' }, yes);
  const cancel = h('button', { type: 'button', class: 'secondary confirm-no' }, 'Cancel');
  const box = h('span', { class: 'confirm', role: 'group', 'aria-label': question }, h('span', {}, question), ' ', confirmButton, ' ', cancel);
  const restore = () => {
    box.replaceWith(button);
    focus(button);
  };
  cancel.addEventListener('click', restore);
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') restore();
  });
  confirmButton.addEventListener('click', async () => {
    confirmButton.disabled = true;
    cancel.disabled = true;
    try {
      await onYes();
    } finally {
      confirmButton.disabled = false;
      cancel.disabled = false;
    }
  });
  button.replaceWith(box);
  focus(cancel);
}
