// The HTTP API as the console uses it: the session token, JSON requests, problem documents
// turned into messages a person can act on, and the chat's server-sent events.

const TOKEN_KEY = 'switchyard.token';
const EXPIRES_KEY = 'switchyard.expires_at';
const LOGIN_PATH = '/v1/auth/login';

/**
 * The session: the bearer token lives in sessionStorage only (gone when the tab closes,
 * never in localStorage or a cookie) and is never written to the console or the page.
 */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  /** Keeps a new token that lives `expiresIn` seconds. */
  start(token, expiresIn) {
    sessionStorage.setItem(TOKEN_KEY, token);
    const seconds = Number(expiresIn);
    if (Number.isFinite(seconds) && seconds > 0) {
      sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + seconds * 1000));
    } else {
      sessionStorage.removeItem(EXPIRES_KEY);
    }
  },
  /** Forgets the token. */
  end() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(EXPIRES_KEY);
  },
  /** Milliseconds until the token expires (Infinity if unknown). */
  remaining() {
    const at = Number(sessionStorage.getItem(EXPIRES_KEY));
    return at > 0 ? at - Date.now() : Infinity;
  },
};

/** A failed request: the HTTP status and the server's problem document. */
export class ApiError extends Error {
  constructor(status, problem = {}, retryAfter = null) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.type = typeof problem.type === 'string' ? problem.type : '';
    this.title = typeof problem.title === 'string' ? problem.title : '';
    this.detail = typeof problem.detail === 'string' ? problem.detail : '';
    this.retryAfter = retryAfter;
  }

  /** The problem type's last segment (`limit-reached`). */
  get kind() {
    return this.type.split('/').pop();
  }
}

/** The request never got an answer (network down, server gone). */
export class NetworkError extends Error {
  constructor(cause) {
    super('network error');
    this.name = 'NetworkError';
    this.cause = cause;
  }
}

function expired(path) {
  // A 401 on anything but the login itself means the session is over: say so once, the
  // app shows the login page with an explanation.
  if (path !== LOGIN_PATH) {
    session.end();
    window.dispatchEvent(new CustomEvent('switchyard:session-expired'));
  }
}

async function problemFrom(response, path) {
  let problem = {};
  try {
    const body = await response.json();
    if (body && typeof body === 'object') problem = body;
  } catch {
    // Not JSON (a proxy's page): the status alone says enough.
  }
  const retryAfter = Number(response.headers.get('retry-after')) || null;
  if (response.status === 401) expired(path);
  return new ApiError(response.status, problem, retryAfter);
}

function headers(extra = {}) {
  const out = { Accept: 'application/json', ...extra };
  const token = session.token;
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}

/** One JSON request; throws ApiError or NetworkError. */
export async function api(method, path, body) {
  const init = {
    method,
    headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    cache: 'no-store',
    credentials: 'omit',
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new NetworkError(e);
  }
  if (!response.ok) throw await problemFrom(response, path);
  if (response.status === 204) return null;
  return response.json();
}

/** Every page of a list (bounded), following `next_cursor`. */
export async function listAll(path, { maxPages = 20, cursor: first = null } = {}) {
  const items = [];
  let cursor = first;
  for (let page = 0; page < maxPages; page += 1) {
    const sep = path.includes('?') ? '&' : '?';
    const url = cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path;
    const answer = await api('GET', url);
    items.push(...answer.items);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return items;
}

function parseEvent(block) {
  let name = 'message';
  const data = [];
  for (const raw of block.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const key = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (key === 'event') name = value;
    else if (key === 'data') data.push(value);
  }
  if (data.length === 0) return null;
  return { name, data: data.join('\n') };
}

/**
 * One chat turn, streamed: `on.routing({agent, intent, routing})` when the agent is chosen,
 * `on.delta(text)` for each piece of the answer; resolves with the whole answer (the `done`
 * event), rejects with an ApiError (an `error` event or a refused request) or NetworkError.
 * `on.signal` (an AbortSignal) stops reading: the turn itself goes on and is stored.
 */
export async function chatStream(body, on = {}) {
  let response;
  try {
    response = await fetch('/v1/chat', {
      method: 'POST',
      headers: headers({ Accept: 'text/event-stream', 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      signal: on.signal,
    });
  } catch (e) {
    throw new NetworkError(e);
  }
  if (!response.ok) throw await problemFrom(response, '/v1/chat');
  const type = response.headers.get('content-type') || '';
  if (!type.startsWith('text/event-stream') || !response.body) {
    // An answer replayed for an idempotency key, or a proxy that buffered: the whole JSON.
    const done = await response.json();
    on.routing?.(done);
    return done;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new NetworkError(e);
      }
      if (chunk.done) break;
      buffer += chunk.value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (!event) continue;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          continue;
        }
        if (event.name === 'routing') on.routing?.(data);
        else if (event.name === 'failover') on.failover?.(data);
        else if (event.name === 'delta') on.delta?.(typeof data.text === 'string' ? data.text : '');
        else if (event.name === 'done') return data;
        else if (event.name === 'error') throw new ApiError(Number(data.status) || 500, data);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  throw new NetworkError(new Error('the answer stream ended before the answer was complete'));
}

/**
 * What to tell a person about a failed request: `{title, detail}` in plain words, with the
 * server's detail where it helps.
 */
export function describe(error, context = '') {
  if (error instanceof NetworkError) {
    return {
      title: 'Cannot reach Switchyard',
      detail: 'The request did not get an answer. Check your connection and try again.',
    };
  }
  if (!(error instanceof ApiError)) {
    return { title: 'Something went wrong', detail: String(error && error.message ? error.message : error) };
  }
  const detail = error.detail;
  switch (error.status) {
    case 400:
    case 422:
      return { title: 'Not accepted', detail: detail || 'The server did not accept these values.' };
    case 401:
      return context === 'login'
        ? { title: 'Sign-in failed', detail: 'The tenant, e-mail or password is wrong.' }
        : { title: 'Session expired', detail: 'Your session has expired or is no longer valid. Sign in again to continue.' };
    case 403:
      if (context === 'login') {
        return { title: 'Sign-in refused', detail: detail ? `${detail[0].toUpperCase()}${detail.slice(1)}.` : 'This account may not sign in.' };
      }
      return { title: 'Not allowed', detail: detail ? `You may not do this: ${detail}.` : 'Your role may not do this.' };
    case 404:
      return { title: 'Not found', detail: 'It does not exist, or it has been deleted.' };
    case 409:
      if (error.kind === 'limit-reached') {
        return { title: 'Conversation limit reached', detail: detail || 'No new conversation can be started.' };
      }
      return { title: 'Conflict', detail: detail || 'The request conflicts with the current state.' };
    case 413:
      return { title: 'Too large', detail: 'The message is larger than the server accepts.' };
    case 429: {
      const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : ' Try again shortly.';
      return { title: 'Too many requests', detail: (detail ? `${detail}.` : 'The limit for now is reached.') + wait };
    }
    case 502:
      return { title: 'The agent failed', detail: detail || 'The agent could not answer, and no other agent could take over.' };
    case 503:
      if (error.kind === 'no-agent') {
        return { title: 'No agent available', detail: detail || 'The tenant has no enabled agent.' };
      }
      if (error.kind === 'unavailable') {
        return { title: 'Service unavailable', detail: detail || 'Retry shortly.' };
      }
      return { title: 'Agent unavailable', detail: detail || 'The agents that could answer are failing; retry later.' };
    case 504:
      return { title: 'The agent timed out', detail: detail || 'The agent took too long to answer.' };
    default:
      return { title: error.title || `Error ${error.status}`, detail: detail || 'The request failed on the server.' };
  }
}
