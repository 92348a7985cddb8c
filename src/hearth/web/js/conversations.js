// Conversations kept in this browser (localStorage): list, create, rename, delete, export.
// Nothing of a conversation is stored on the server.

import { settings } from './settings.js';

const KEY = 'hearth.conversations.v1';
const listeners = new Set();
let cache = null;

function load() {
  if (cache) return cache;
  try {
    const parsed = JSON.parse(localStorage.getItem(KEY) || '[]');
    cache = Array.isArray(parsed) ? parsed.filter((c) => c && typeof c.id === 'string') : [];
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
      system: defaults.system || '',
      options: { ...(defaults.options || {}) },
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
