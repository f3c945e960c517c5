// Users and API keys (admins): the tenant's users — invite one with a role, disable or
// enable, set a new password — and its API keys: create one (its secret shown once),
// revoke one.

import { api, listAll } from './api.js';
import { h, field, focus, when, confirmInPlace } from './dom.js';
import { errorBox } from './chat.js';

function table(id, caption, heads, rows) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id, class: 'agents-table' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows),
    ),
  );
}

/** The users and API keys page. */
export function usersView(ctx) {
  const heading = h('h1', { id: 'users-title', tabindex: '-1' }, 'Users and API keys');
  const status = h('div', { id: 'users-status', role: 'status' });
  const usersBox = h('div', { id: 'users-list' });
  const keysBox = h('div', { id: 'keys-list' });
  let users = [];

  // ----- inviting a user -----
  const email = h('input', { id: 'invite-email', type: 'email', required: true, autocomplete: 'off' });
  const displayName = h('input', { id: 'invite-name', autocomplete: 'off' });
  const role = h('select', { id: 'invite-role' }, h('option', { value: 'member' }, 'member'), h('option', { value: 'admin' }, 'admin'));
  const password = h('input', { id: 'invite-password', type: 'password', autocomplete: 'new-password', minlength: '12' });
  const inviteError = h('div', { id: 'invite-error' });
  const invite = h(
    'form',
    { id: 'invite-form', class: 'panel', 'aria-labelledby': 'invite-title', novalidate: true },
    h('h2', { id: 'invite-title' }, 'Invite a user'),
    inviteError,
    field('E-mail', email),
    field('Name to show', displayName),
    field('Role', role, 'Admins manage agents, users and keys; members chat.'),
    field('First password', password, 'At least 12 characters; give it to them, and they sign in with it.'),
    h('div', { class: 'actions' }, h('button', { id: 'invite-submit', type: 'submit' }, 'Invite')),
  );
  invite.addEventListener('submit', async (e) => {
    e.preventDefault();
    inviteError.replaceChildren();
    try {
      const body = { email: email.value.trim(), role: role.value };
      if (displayName.value.trim()) body.display_name = displayName.value.trim();
      if (password.value) body.password = password.value;
      const user = await api('POST', '/v1/users', body);
      status.replaceChildren(h('div', { class: 'notice ok' }, `${user.email} is invited as ${user.role}.`));
      ctx.announce(`${user.email} invited.`);
      email.value = '';
      displayName.value = '';
      password.value = '';
      await loadUsers();
    } catch (error) {
      inviteError.replaceChildren(errorBox(error, 'user'));
      focus(email);
    }
  });

  function userRow(u) {
    const toggle = h(
      'button',
      { type: 'button', class: 'secondary toggle-user', 'aria-label': `${u.status === 'active' ? 'Disable' : 'Enable'} ${u.email}` },
      u.status === 'active' ? 'Disable' : 'Enable',
    );
    toggle.addEventListener('click', async () => {
      status.replaceChildren();
      try {
        await api('PATCH', `/v1/users/${encodeURIComponent(u.id)}`, { status: u.status === 'active' ? 'disabled' : 'active' });
        ctx.announce(`${u.email} ${u.status === 'active' ? 'disabled' : 'enabled'}.`);
        await loadUsers();
        focus(usersBox.querySelector(`button[aria-label$="${CSS.escape(u.email)}"].toggle-user`) || heading);
      } catch (error) {
        status.replaceChildren(errorBox(error, 'user'));
      }
    });
    const reset = h('button', { type: 'button', class: 'secondary reset-password', 'aria-label': `Set a new password for ${u.email}` }, 'New password');
    const cell = h('td', { 'data-label': 'Actions', class: 'row-actions' }, toggle, reset);
    reset.addEventListener('click', () => {
      const input = h('input', { type: 'password', class: 'new-password', autocomplete: 'new-password', 'aria-label': `New password for ${u.email}` });
      const save = h('button', { type: 'submit', class: 'save-password' }, 'Save');
      const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
      const form = h('form', { class: 'inline-form password-form' }, input, save, cancel);
      const back = () => {
        form.replaceWith(reset);
        focus(reset);
      };
      cancel.addEventListener('click', back);
      form.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') back();
      });
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        try {
          await api('PATCH', `/v1/users/${encodeURIComponent(u.id)}`, { password: input.value });
          status.replaceChildren(h('div', { class: 'notice ok' }, `The password of ${u.email} is set; their earlier sessions have ended.`));
          back();
        } catch (error) {
          status.replaceChildren(errorBox(error, 'user'));
          focus(input);
        }
      });
      reset.replaceWith(form);
      focus(input);
    });
    return h(
      'tr',
      { dataset: { email: u.email } },
      h('th', { scope: 'row' }, u.email),
      h('td', { 'data-label': 'Name' }, u.display_name || '—'),
      h('td', { 'data-label': 'Role' }, u.role),
      h('td', { 'data-label': 'Status', class: `user-status ${u.status}` }, u.status),
      cell,
    );
  }

  async function loadUsers() {
    try {
      users = await listAll('/v1/users?limit=100');
      usersBox.replaceChildren(table('users-table', 'Users of the tenant', ['E-mail', 'Name', 'Role', 'Status', 'Actions'], users.map(userRow)));
      fillOwners();
    } catch (error) {
      usersBox.replaceChildren(errorBox(error, 'user'));
    }
  }

  // ----- API keys -----
  const keyName = h('input', { id: 'key-name', required: true, maxlength: '100', autocomplete: 'off' });
  const keyOwner = h('select', { id: 'key-user' });
  const keyError = h('div', { id: 'key-error' });
  const secretBox = h('div', { id: 'key-secret' });
  const keyForm = h(
    'form',
    { id: 'key-form', class: 'panel', 'aria-labelledby': 'key-title', novalidate: true },
    h('h2', { id: 'key-title' }, 'Create an API key'),
    keyError,
    field('Name', keyName, 'What the key is for, e.g. the script or the chat front end that uses it.'),
    field('Acts as', keyOwner, 'The key has this user’s role, and its conversations are theirs.'),
    h('div', { class: 'actions' }, h('button', { id: 'key-submit', type: 'submit' }, 'Create')),
    secretBox,
  );

  function fillOwners() {
    const chosen = keyOwner.value;
    keyOwner.replaceChildren(...users.filter((u) => u.status === 'active').map((u) => h('option', { value: u.id }, `${u.email} (${u.role})`)));
    if (users.some((u) => u.id === chosen)) keyOwner.value = chosen;
  }

  keyForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    keyError.replaceChildren();
    secretBox.replaceChildren();
    if (!keyName.value.trim()) {
      keyError.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, 'Give the key a name.'));
      focus(keyName);
      return;
    }
    try {
      const key = await api('POST', '/v1/api-keys', { name: keyName.value.trim(), user_id: keyOwner.value || undefined });
      const secret = h('input', { id: 'key-secret-value', class: 'mono', readonly: true, value: key.secret, 'aria-label': 'The new key’s secret' });
      secretBox.replaceChildren(
        h('div', { class: 'notice warn', role: 'status' }, h('strong', {}, 'Copy the secret now: '), 'it is shown this once and cannot be read again.'),
        secret,
      );
      keyName.value = '';
      await loadKeys();
      focus(secret);
      secret.select();
    } catch (error) {
      keyError.replaceChildren(errorBox(error, 'key'));
    }
  });

  function keyRow(k) {
    const owner = users.find((u) => u.id === k.user_id)?.email ?? k.user_id;
    const revoke = h('button', { type: 'button', class: 'secondary revoke-key', 'aria-label': `Revoke the key ${k.name}` }, 'Revoke');
    revoke.addEventListener('click', () =>
      confirmInPlace(revoke, `Revoke ${k.name}? Whatever uses it is refused from now on.`, 'Revoke', async () => {
        try {
          await api('DELETE', `/v1/api-keys/${encodeURIComponent(k.id)}`);
          ctx.announce(`Key ${k.name} revoked.`);
          await loadKeys();
          focus(keyName);
        } catch (error) {
          status.replaceChildren(errorBox(error, 'key'));
        }
      }),
    );
    return h(
      'tr',
      { dataset: { name: k.name } },
      h('th', { scope: 'row' }, k.name),
      h('td', { 'data-label': 'Starts with', class: 'mono' }, k.prefix),
      h('td', { 'data-label': 'Acts as' }, owner),
      h('td', { 'data-label': 'Created' }, when(k.created_at)),
      h('td', { 'data-label': 'Last used' }, k.last_used_at ? when(k.last_used_at) : 'never'),
      h('td', { 'data-label': 'Actions', class: 'row-actions' }, revoke),
    );
  }

  async function loadKeys() {
    try {
      const keys = await listAll('/v1/api-keys?limit=100');
      keysBox.replaceChildren(
        keys.length === 0
          ? h('p', { class: 'empty' }, 'No API keys yet.')
          : table('keys-table', 'API keys of the tenant', ['Name', 'Starts with', 'Acts as', 'Created', 'Last used', 'Actions'], keys.map(keyRow)),
      );
    } catch (error) {
      keysBox.replaceChildren(errorBox(error, 'key'));
    }
  }

  (async () => {
    await loadUsers();
    await loadKeys();
  })();
  const view = h(
    'section',
    { id: 'users-view', class: 'view', 'aria-labelledby': 'users-title' },
    heading,
    status,
    h('h2', {}, 'Users'),
    usersBox,
    invite,
    h('h2', {}, 'API keys'),
    keysBox,
    keyForm,
  );
  return { element: view, focusTarget: heading };
}
