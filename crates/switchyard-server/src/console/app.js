// The console's entry point: the session, the login page, the top bar and the pages,
// chosen by the address's fragment (#/chat, #/chat/ID, #/history, #/agents, #/analytics,
// #/users, #/lab).

import { api, describe, listAll, session, ApiError } from './api.js';
import { h, field, focus } from './dom.js';
import { chatView } from './chat.js';
import { historyView } from './history.js';
import { agentsView } from './agents.js';
import { analyticsView } from './analytics.js';
import { labView } from './lab.js';
import { usersView } from './users.js';

const LOGIN_KEY = 'switchyard.login';
const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
const whoami = document.getElementById('whoami');
const announcer = document.getElementById('announcer');

let me = null; // {user, tenant} of the signed-in user
let agentNames = null; // a promise of Map(id → name), loaded once per session
let expiryTimer = null;

const ctx = {
  /** Says `text` to screen readers. */
  announce(text) {
    announcer.textContent = '';
    // A fresh node, so that the same text twice is said twice.
    requestAnimationFrame(() => {
      announcer.textContent = text;
    });
  },
  /** The names of the tenant's agents by id (stored turns name agents by id). */
  agentNames() {
    if (!agentNames) {
      agentNames = listAll('/v1/agents?limit=100')
        .then((agents) => new Map(agents.map((a) => [a.id, a.name])))
        .catch((error) => {
          agentNames = null;
          if (error instanceof ApiError && error.status === 401) throw error;
          return new Map();
        });
    }
    return agentNames;
  },
  /** Forgets the cached agent names after a change. */
  agentsChanged() {
    agentNames = null;
  },
};

function isAdmin() {
  return me?.user?.role === 'admin';
}

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || 'chat', id: parts[1] || null };
}

function showTopbar() {
  topbar.hidden = false;
  const who = me.user.display_name ? `${me.user.display_name} <${me.user.email}>` : me.user.email;
  whoami.textContent = `${who} · ${me.tenant.name} (${me.tenant.slug}) · ${me.user.role}`;
  document.getElementById('logout').title = `Signed in as ${whoami.textContent}`;
  for (const id of ['nav-agents', 'nav-analytics', 'nav-users', 'nav-lab']) {
    document.getElementById(id).hidden = !isAdmin();
  }
}

function markCurrent(page) {
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.id === `nav-${page}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function mount(view, title) {
  main.replaceChildren(view.element);
  document.title = `${title} · Switchyard`;
  focus(view.focusTarget);
}

function render() {
  if (!session.token || !me) {
    loginPage();
    return;
  }
  showTopbar();
  const { page, id } = route();
  if (['agents', 'analytics', 'users', 'lab'].includes(page) && !isAdmin()) {
    markCurrent('');
    main.replaceChildren(
      h(
        'section',
        { class: 'view' },
        h('h1', { tabindex: '-1' }, 'Not allowed'),
        h('div', { class: 'notice error', role: 'alert' }, 'Only the tenant’s admins can see this page.'),
      ),
    );
    focus(main.querySelector('h1'));
    return;
  }
  switch (page) {
    case 'history':
      markCurrent('history');
      mount(historyView(ctx), 'History');
      break;
    case 'agents':
      markCurrent('agents');
      mount(agentsView(ctx), 'Agents');
      break;
    case 'analytics':
      markCurrent('analytics');
      mount(analyticsView(ctx), 'Analytics');
      break;
    case 'users':
      markCurrent('users');
      mount(usersView(ctx), 'Users and API keys');
      break;
    case 'lab':
      markCurrent('lab');
      mount(labView(ctx), 'Routing lab');
      break;
    default:
      markCurrent('chat');
      mount(chatView(ctx, page === 'chat' ? id : null), 'Chat');
  }
}

function rememberedLogin() {
  try {
    return JSON.parse(sessionStorage.getItem(LOGIN_KEY)) || {};
  } catch {
    return {};
  }
}

function loginPage(notice) {
  topbar.hidden = true;
  const remembered = rememberedLogin();
  const tenant = h('input', { id: 'login-tenant', name: 'tenant', required: true, autocomplete: 'organization', autocapitalize: 'none', spellcheck: 'false', value: remembered.tenant || '' });
  const email = h('input', { id: 'login-email', name: 'email', type: 'email', required: true, autocomplete: 'username', value: remembered.email || '' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', required: true, autocomplete: 'current-password' });
  const submit = h('button', { id: 'login-submit', type: 'submit' }, 'Sign in');
  const error = h('div', { id: 'login-error' });
  const form = h(
    'form',
    { id: 'login-form', class: 'panel login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', tabindex: '-1' }, 'Sign in to Switchyard'),
    notice ? h('div', { id: 'login-notice', class: 'notice warn', role: 'status' }, notice) : null,
    error,
    field('Organisation (tenant)', tenant, 'The short name of your organisation, e.g. acme.'),
    field('E-mail', email),
    field('Password', password),
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.replaceChildren();
    if (!tenant.value.trim() || !email.value.trim() || !password.value) {
      error.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, 'Give the organisation, your e-mail and your password.'));
      return;
    }
    submit.disabled = true;
    try {
      const login = { tenant: tenant.value.trim(), email: email.value.trim() };
      const answer = await api('POST', '/v1/auth/login', { ...login, password: password.value });
      session.start(answer.access_token, answer.expires_in);
      sessionStorage.setItem(LOGIN_KEY, JSON.stringify(login));
      await signedIn();
      render();
    } catch (err) {
      session.end();
      const { title, detail } = describe(err, 'login');
      error.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, h('strong', {}, title), ' ', detail));
      password.value = '';
      focus(password);
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(form);
  document.title = 'Sign in · Switchyard';
  focus(tenant.value ? (email.value ? password : email) : tenant);
}

async function signedIn() {
  me = await api('GET', '/v1/me');
  agentNames = null;
  clearTimeout(expiryTimer);
  const left = session.remaining();
  if (Number.isFinite(left) && left < 2 ** 31) {
    expiryTimer = setTimeout(() => expire('Your session has expired. Sign in again to continue.'), Math.max(0, left));
  }
}

function expire(notice) {
  session.end();
  me = null;
  agentNames = null;
  clearTimeout(expiryTimer);
  loginPage(notice);
}

async function start() {
  document.getElementById('skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    focus(main.querySelector('h1') || main);
  });
  document.getElementById('logout').addEventListener('click', () => {
    expire('You have signed out.');
    history.replaceState(null, '', '#/chat');
  });
  window.addEventListener('hashchange', render);
  window.addEventListener('switchyard:session-expired', () =>
    expire('Your session has expired or is no longer valid. Sign in again to continue.'),
  );
  if (session.token) {
    if (session.remaining() <= 0) {
      expire('Your session has expired. Sign in again to continue.');
      return;
    }
    try {
      await signedIn();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        const { title, detail } = describe(err);
        loginPage(`${title}: ${detail}`);
      }
      return;
    }
  }
  render();
}

start();
