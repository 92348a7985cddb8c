// The server's public API as the app uses it: JSON calls, NDJSON streams and readable errors.
// Every call goes to this page's own origin, with the API key when one is set.

import { settings } from './settings.js';

export class ApiError extends Error {
  constructor(status, message, body = null, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export function isAbort(error) {
  return error && error.name === 'AbortError';
}

function explain(status, message, retryAfter) {
  if (status === 401) return `${message} (set the server's API key in Settings)`;
  if (status === 503) {
    const wait = retryAfter ? `Try again in ${retryAfter} s.` : 'Try again in a moment.';
    return `The server is busy right now. ${wait} (${message})`;
  }
  return message;
}

async function errorFrom(response) {
  let body = null;
  let message = `${response.status} ${response.statusText || 'error'}`.trim();
  try {
    body = await response.json();
    if (typeof body?.error === 'string') message = body.error;
    else if (typeof body?.error?.message === 'string') message = body.error.message;
  } catch {
    // Not JSON: keep the status line.
  }
  const retryAfter = response.headers.get('Retry-After');
  return new ApiError(response.status, explain(response.status, message, retryAfter), body, retryAfter);
}

export async function request(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = settings.apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, `Cannot reach the hearth server at ${location.origin}. Is it still running?`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function getJSON(path, options) {
  const response = await request(path, options);
  return response.json();
}

export async function postJSON(path, body, options = {}) {
  const response = await request(path, { ...options, method: options.method || 'POST', body });
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// Items of an NDJSON stream as they arrive. A {"error": ...} line (an error after the stream
// started) is thrown as an ApiError.
export async function* ndjson(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const parse = (line) => {
    const item = JSON.parse(line);
    if (item && typeof item.error === 'string') throw new ApiError(response.status, item.error, item);
    return item;
  };
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (isAbort(error)) throw error;
        throw new ApiError(0, `The connection to the server was lost mid-stream (${error.message}).`);
      }
      const { value, done } = chunk;
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).trim();
        buffer = buffer.slice(end + 1);
        if (line) yield parse(line);
      }
    }
    buffer += decoder.decode();
    if (buffer.trim()) yield parse(buffer.trim());
  } finally {
    reader.releaseLock();
  }
}

export async function* stream(path, body, signal) {
  const response = await request(path, { method: 'POST', body, signal });
  yield* ndjson(response);
}

// Installed models, with hearth's facts (license, fit, context length) when available.
export async function loadLocalModels() {
  const [tags, facts] = await Promise.all([
    getJSON('/api/tags'),
    getJSON('/api/hearth/models').catch(() => null),
  ]);
  const factsByName = new Map((facts?.models || []).map((model) => [model.name, model]));
  return (tags.models || []).map((model) => ({ ...model, facts: factsByName.get(model.name) || null, remote: false }));
}

// Models of the remote providers that can be called (their key is set). Asking the providers
// can take a while, so the app shows local models first and adds these when they arrive.
export async function loadCloudModels() {
  const remote = await getJSON('/api/hearth/remote');
  const cloud = [];
  for (const provider of remote.providers || []) {
    if (!provider.ready) continue;
    for (const model of provider.models) {
      cloud.push({ name: model.name, remote: true, provider: provider.name, endpoint: provider.endpoint, info: model });
    }
  }
  return cloud;
}
