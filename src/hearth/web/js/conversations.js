// Conversations kept in this browser (localStorage): list, create, rename, delete, export.
// Nothing of a conversation is stored on the server.

import { settings } from './settings.js';

const KEY = 'hearth.conversations.v1';
export const CUT_SHORT = 'The answer was cut short: the page was closed or reloaded while it streamed.';
const listeners = new Set();
let cache = null;

const text = (value, fallback = '') => (typeof value === 'string' ? value : fallback);
const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function cleanMessage(message) {
  if (!isObject(message) || !['user', 'assistant'].includes(message.role)) return null;
  const clean = { ...message, content: text(message.content) };
  // An answer still streaming when the page went away (a reload, a closed tab) was cut short.
  if (clean.error !== undefined && typeof clean.error !== 'string') delete clean.error;
  if (clean.pending) {
    delete clean.pending;
    clean.error = clean.error || CUT_SHORT;
  }
  if (clean.stats !== undefined && !isObject(clean.stats)) delete clean.stats;
  return clean;
}

// A conversation as stored, made safe to use: storage written by an older version, another
// tab or by hand must not stop the app from starting. What cannot be repaired is dropped.
function cleanConversation(stored) {
  if (!isObject(stored) || typeof stored.id !== 'string' || !stored.id) return null;
  return {
    ...stored,
    title: text(stored.title, 'Untitled').slice(0, 200) || 'Untitled',
    titled: stored.titled === true,
    model: text(stored.model),
    system: text(stored.system),
    options: isObject(stored.options) ? stored.options : {},
    messages: (Array.isArray(stored.messages) ? stored.messages : []).map(cleanMessage).filter(Boolean),
    created: Number.isFinite(stored.created) ? stored.created : 0,
    updated: Number.isFinite(stored.updated) ? stored.updated : 0,
  };
}

function load() {
  if (cache) return cache;
  try {
    const parsed = JSON.parse(localStorage.getItem(KEY) || '[]');
    cache = Array.isArray(parsed) ? parsed.map(cleanConversation).filter(Boolean) : [];
  } catch {
    cache = [];
  }
  return cache;
}

function persist() {
  try {
    localStorage.setItem(KEY, JSON.stringify(cache));
    return null;
  } catch (error) {
    return `This conversation could not be saved in the browser: ${error.message}`;
  }
}

function notify() {
  for (const listener of listeners) listener();
}

export const conversations = {
  onChange(listener) {
    listeners.add(listener);
  },
  all() {
    return [...load()].sort((a, b) => (b.updated || 0) - (a.updated || 0));
  },
  get(id) {
    return load().find((c) => c.id === id) || null;
  },
  create(model) {
    const defaults = settings.defaults();
    const conversation = {
      id: `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`,
      title: 'New chat',
      titled: false,
      model: model || '',
      system: text(defaults?.system),
      options: isObject(defaults?.options) ? { ...defaults.options } : {},
      messages: [],
      created: Date.now(),
      updated: Date.now(),
    };
    // Listed once it has something in it (see save).
    return conversation;
  },
  // Save after a change; returns an error message when the browser refused to store it.
  save(conversation) {
    conversation.updated = Date.now();
    if (!conversation.titled) {
      const first = conversation.messages.find((m) => m.role === 'user');
      if (first) {
        const text = first.content.replace(/\s+/g, ' ').trim();
        conversation.title = text.length > 48 ? `${text.slice(0, 47)}…` : text || 'New chat';
        conversation.titled = true;
      }
    }
    const list = load();
    if (!list.includes(conversation)) list.push(conversation);
    const problem = persist();
    notify();
    return problem;
  },
  rename(id, title) {
    const conversation = this.get(id);
    if (!conversation || !title.trim()) return;
    conversation.title = title.trim().slice(0, 120);
    conversation.titled = true;
    persist();
    notify();
  },
  remove(id) {
    cache = load().filter((c) => c.id !== id);
    persist();
    notify();
  },
};

export function asMarkdown(conversation) {
  const lines = [`# ${conversation.title}`, '', `Model: ${conversation.model || '(none)'}`, ''];
  if (conversation.system) lines.push('## System', '', conversation.system, '');
  for (const message of conversation.messages) {
    lines.push(`## ${message.role === 'user' ? 'User' : 'Assistant'}`, '', message.content || '');
    if (message.error) lines.push('', `> Error: ${message.error}`);
    lines.push('');
  }
  return lines.join('\n');
}

export function asJSON(conversation) {
  const { id, title, model, system, options, messages, created, updated } = conversation;
  return JSON.stringify({ id, title, model, system, options, messages, created, updated }, null, 2);
}
