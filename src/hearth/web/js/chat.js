// The Chat view: model picker, streamed answers rendered as Markdown (a reasoning model's
// thinking in a collapsible block above), stop and regenerate, system prompt, parameters and the
// Think toggle, speed figures, and the conversation list.

import { isAbort, loadCloudModels, loadLocalModels, stream } from './api.js';
import { cloudBadge, fitBadge, licenseBadge, plainBadge } from './badges.js';
import { asJSON, asMarkdown, conversations, CUT_SHORT } from './conversations.js';
import { confirmDialog } from './dialogs.js';
import { $, append, clear, copyText, downloadText, h, showError } from './dom.js';
import { bytes, fileName, fixed, tokens } from './format.js';
import { renderMarkdown } from './markdown.js';
import { settings } from './settings.js';

const OPTION_FIELDS = [
  ['temperature', '#param-temperature', parseFloat],
  ['num_ctx', '#param-num-ctx', (v) => parseInt(v, 10)],
  ['num_predict', '#param-num-predict', (v) => parseInt(v, 10)],
];

const state = {
  leaving: false, // the page is going away (reload, closed tab): streams end because of that
  catalog: { local: [], cloud: [] },
  conversation: null,
  controller: null,
  elements: new Map(), // message -> its element, for updates while streaming
};

let ui;

export function initChat() {
  ui = {
    picker: $('#model-picker'),
    badges: $('#model-badges'),
    cloudWarning: $('#cloud-warning'),
    messages: $('#messages'),
    prompt: $('#prompt'),
    send: $('#send'),
    stop: $('#stop'),
    error: $('#chat-error'),
    list: $('#conversation-list'),
    aside: $('#conversations'),
    params: $('#chat-params'),
    system: $('#param-system'),
    empty: $('#chat-empty'),
    think: addThinkToggle(),
  };
  $('#composer').addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });
  ui.prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  ui.prompt.addEventListener('input', autosize);
  ui.stop.addEventListener('click', stop);
  document.addEventListener('keydown', (event) => {
    // Only in the Chat view: Esc elsewhere (a search field, say) must not stop an answer.
    if (event.key !== 'Escape' || document.querySelector('dialog[open]') || $('#view-chat').hidden) return;
    if (state.controller) {
      event.preventDefault();
      stop();
    } else if (ui.aside.classList.contains('open')) {
      event.preventDefault();
      setDrawer(false);
    }
  });
  ui.picker.addEventListener('change', () => {
    state.conversation.model = ui.picker.value;
    settings.setLastModel(ui.picker.value);
    if (state.conversation.messages.length) conversations.save(state.conversation);
    showModelInfo();
  });
  $('#new-chat').addEventListener('click', () => {
    openConversation(conversations.create(ui.picker.value || settings.lastModel()));
    setDrawer(false, false);
    ui.prompt.focus();
  });
  // In a narrow window the conversation list is a drawer over the chat.
  $('#toggle-conversations').addEventListener('click', (event) => {
    event.stopPropagation();
    setDrawer(!ui.aside.classList.contains('open'));
  });
  $('#close-conversations').addEventListener('click', () => setDrawer(false));
  $('.chat-main').addEventListener('click', () => {
    if (ui.aside.classList.contains('open')) setDrawer(false);
  });
  $('#toggle-params').addEventListener('click', (event) => {
    ui.params.hidden = !ui.params.hidden;
    event.currentTarget.setAttribute('aria-expanded', String(!ui.params.hidden));
    if (!ui.params.hidden) ui.system.focus();
  });
  $('#export-md').addEventListener('click', () => exportConversation('md'));
  $('#export-json').addEventListener('click', () => exportConversation('json'));
  ui.system.addEventListener('input', readParameters);
  for (const [, selector] of OPTION_FIELDS) $(selector).addEventListener('input', readParameters);
  ui.think.addEventListener('change', readParameters);
  ui.messages.addEventListener('click', onMessageClick);
  conversations.onChange(renderConversationList);
  // A reload or a closed tab mid-answer keeps what has arrived so far.
  window.addEventListener('pagehide', () => {
    state.leaving = true;
    if (state.controller) conversations.save(state.conversation);
  });
  window.addEventListener('pageshow', () => { state.leaving = false; });
  window.addEventListener('hearth:models-changed', () => refreshModels());

  const recent = conversations.all()[0];
  openConversation(recent || conversations.create(settings.lastModel()));
  refreshModels();
}

export function showChat() {
  ui.prompt.focus();
}

// Open the chat with a given model selected (from the Models view).
export function chatWith(model) {
  if (state.conversation.messages.length) openConversation(conversations.create(model));
  state.conversation.model = model;
  settings.setLastModel(model);
  fillPicker();
}

function setDrawer(open, moveFocus = true) {
  const wasOpen = ui.aside.classList.contains('open');
  ui.aside.classList.toggle('open', open);
  const toggle = $('#toggle-conversations');
  toggle.setAttribute('aria-expanded', String(open));
  if (!moveFocus || open === wasOpen) return;
  if (open) $('#new-chat').focus();
  else if (getComputedStyle(toggle).display !== 'none') toggle.focus();
}

// The Think switch sits with the other parameters; it is made here rather than in index.html
// because it belongs to this view's request (the "think" field of /api/chat).
function addThinkToggle() {
  const toggle = h('input', { type: 'checkbox', id: 'param-think' });
  $('#chat-params').append(h('label', { class: 'field think', title: 'Ask a reasoning model to think before it answers' },
    toggle, h('span', {}, 'Think'),
    h('span', { class: 'hint' }, 'reasoning models: show their thinking before the answer')));
  return toggle;
}

function autosize() {
  ui.prompt.style.height = 'auto';
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 240)}px`;
}

// -- models ---------------------------------------------------------------------------------

export async function refreshModels() {
  const cloud = loadCloudModels().catch(() => []);
  try {
    state.catalog.local = await loadLocalModels();
    showError(ui.error, '');
  } catch (error) {
    showError(ui.error, `Could not list models: ${error.message}`);
  }
  fillPicker();
  state.catalog.cloud = await cloud;
  if (state.catalog.cloud.length) fillPicker();
}

function findModel(name) {
  return state.catalog.local.find((m) => m.name === name) || state.catalog.cloud.find((m) => m.name === name) || null;
}

function fillPicker() {
  const { local, cloud } = state.catalog;
  clear(ui.picker);
  let wanted = state.conversation?.model || settings.lastModel();
  if (!wanted && local.length) wanted = local[0].name;
  if (local.length) {
    ui.picker.append(h('optgroup', { label: 'On this machine' }, local.map((model) => {
      const parts = [model.name, bytes(model.size), model.details?.quantization_level,
        model.facts?.license?.id || model.facts?.license_id];
      return h('option', { value: model.name }, parts.filter(Boolean).join(' · '));
    })));
  }
  if (cloud.length) {
    ui.picker.append(h('optgroup', { label: 'Cloud: data leaves this machine' }, cloud.map((model) => (
      h('option', { value: model.name }, `${model.name} · cloud: data leaves this machine`)))));
  }
  if (wanted && !findModel(wanted)) {
    ui.picker.append(h('optgroup', { label: 'Not available' },
      h('option', { value: wanted }, `${wanted} (not installed)`)));
  }
  if (!local.length && !cloud.length && !wanted) {
    ui.picker.append(h('option', { value: '', disabled: true }, 'No models installed: open Discover'));
  }
  ui.picker.value = wanted || '';
  if (state.conversation && !state.conversation.model) state.conversation.model = ui.picker.value;
  showModelInfo();
}

function showModelInfo() {
  const model = findModel(ui.picker.value);
  clear(ui.badges);
  ui.cloudWarning.hidden = true;
  if (!model) {
    if (ui.picker.value) ui.badges.append(h('span', { class: 'badge bad' }, 'not installed'));
    ui.empty.hidden = !!state.catalog.local.length || !!state.catalog.cloud.length;
    return;
  }
  ui.empty.hidden = true;
  if (model.remote) {
    ui.badges.append(cloudBadge(model.endpoint));
    ui.cloudWarning.hidden = false;
    $('#cloud-endpoint').textContent = model.endpoint;
    return;
  }
  const facts = model.facts || {};
  append(ui.badges, [
    plainBadge(bytes(model.size), 'size on disk'),
    plainBadge(facts.parameter_size || model.details?.parameter_size, 'parameters'),
    plainBadge(model.details?.quantization_level || facts.quantization, 'quantization'),
    facts.context_length ? plainBadge(`${tokens(facts.context_length)} context`, 'trained context length') : null,
    licenseBadge(facts.license, facts.license_id),
    fitBadge(facts.fit),
  ]);
}

// -- conversations --------------------------------------------------------------------------

function openConversation(conversation) {
  if (state.controller) {
    // The answer being streamed ends (and is saved) in its own conversation; this one is free
    // to send at once.
    state.controller.abort();
    state.controller = null;
    setBusy(false);
  }
  state.conversation = conversation;
  ui.system.value = conversation.system || '';
  for (const [name, selector] of OPTION_FIELDS) {
    const value = conversation.options?.[name];
    $(selector).value = value === undefined || value === null ? '' : String(value);
  }
  ui.think.checked = typeof conversation.think === 'boolean' ? conversation.think : settings.defaults().think === true;
  if (conversation.model) ui.picker.value = conversation.model;
  fillPicker();
  renderMessages();
  renderConversationList();
  showError(ui.error, '');
}

function readParameters() {
  const conversation = state.conversation;
  conversation.system = ui.system.value;
  conversation.options = {};
  for (const [name, selector, parse] of OPTION_FIELDS) {
    const raw = $(selector).value.trim();
    const value = raw === '' ? NaN : parse(raw);
    if (!Number.isNaN(value)) conversation.options[name] = value;
  }
  conversation.think = ui.think.checked;
  settings.setDefaults({ system: conversation.system, options: conversation.options, think: conversation.think });
  if (conversation.messages.length) conversations.save(conversation);
}

function renderConversationList() {
  clear(ui.list);
  const all = conversations.all();
  if (!all.length) {
    ui.list.append(h('li', { class: 'muted small' }, 'No saved conversations yet.'));
    return;
  }
  for (const conversation of all) {
    const current = conversation.id === state.conversation?.id;
    const item = h('li', { class: current ? 'current' : '', dataset: { id: conversation.id } },
      h('button', {
        type: 'button', class: 'conv-open', 'aria-current': current ? 'true' : null,
        title: conversation.title,
        onclick: () => { openConversation(conversation); setDrawer(false, false); ui.prompt.focus(); },
      }, conversation.title),
      h('button', { type: 'button', class: 'icon', 'aria-label': `Rename ${conversation.title}`, title: 'Rename',
        onclick: () => startRename(item, conversation) }, '✎'),
      h('button', { type: 'button', class: 'icon', 'aria-label': `Delete ${conversation.title}`, title: 'Delete',
        onclick: () => removeConversation(conversation) }, '✕'));
    ui.list.append(item);
  }
}

function startRename(item, conversation) {
  const input = h('input', { type: 'text', class: 'rename', value: conversation.title,
    'aria-label': 'New name for the conversation' });
  let finished = false;
  const finish = (save) => {
    if (finished) return;
    finished = true;
    if (save) conversations.rename(conversation.id, input.value);
    else renderConversationList();
    ui.list.querySelector(`li[data-id="${CSS.escape(conversation.id)}"] .conv-open`)?.focus();
  };
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); finish(true); }
    if (event.key === 'Escape') { event.preventDefault(); event.stopPropagation(); finish(false); }
  });
  input.addEventListener('blur', () => finish(true));
  clear(item).append(input);
  input.focus();
  input.select();
}

async function removeConversation(conversation) {
  const sure = await confirmDialog('Delete conversation?', `"${conversation.title}" will be removed from this browser.`,
    'Delete', true);
  if (!sure) return;
  conversations.remove(conversation.id);
  if (state.conversation.id === conversation.id) {
    openConversation(conversations.all()[0] || conversations.create(ui.picker.value));
  }
}

function exportConversation(kind) {
  const conversation = state.conversation;
  if (!conversation.messages.length) {
    showError(ui.error, 'Nothing to export yet: this conversation is empty.');
    return;
  }
  if (kind === 'md') downloadText(fileName(conversation.title, 'md'), asMarkdown(conversation), 'text/markdown');
  else downloadText(fileName(conversation.title, 'json'), asJSON(conversation), 'application/json');
}

// -- messages -------------------------------------------------------------------------------

function renderMessages() {
  clear(ui.messages);
  state.elements.clear();
  const messages = state.conversation.messages;
  messages.forEach((message) => ui.messages.append(messageElement(message)));
  updateActions();
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function messageElement(message) {
  const body = h('div', { class: 'msg-body' });
  // The model's reasoning, above its answer (filled by fillThinking).
  const thinking = message.role === 'assistant'
    ? h('details', { class: 'msg-thinking', hidden: true },
      h('summary', {}, 'Thinking'), h('div', { class: 'thinking-text' }))
    : null;
  const element = h('article', { class: `msg ${message.role}`, 'aria-label': message.role === 'user' ? 'You' : 'Answer' },
    h('div', { class: 'msg-who' }, message.role === 'user' ? 'You' : (message.model || 'Assistant')),
    thinking,
    body,
    h('div', { class: 'msg-error', role: 'alert', hidden: true }),
    h('div', { class: 'msg-stats' }),
    h('div', { class: 'msg-actions' }));
  state.elements.set(message, element);
  fillMessage(message, element);
  return element;
}

function fillMessage(message, element = state.elements.get(message)) {
  if (!element) return;
  const body = element.querySelector('.msg-body');
  clear(body);
  fillThinking(message, element.querySelector('.msg-thinking'));
  if (message.role === 'user') body.append(h('p', { class: 'plain' }, message.content));
  else if (message.content) body.append(renderMarkdown(message.content));
  else if (message.pending && !message.thinking) {
    body.append(h('span', { class: 'typing', 'aria-label': 'waiting for the answer' }, '…'));
  }
  showError(element.querySelector('.msg-error'), message.error || '');
  const stats = element.querySelector('.msg-stats');
  stats.textContent = message.role === 'assistant' ? statsText(message) : '';
}

// Text only (textContent): the reasoning is shown as the model wrote it, never as markup.
function fillThinking(message, details) {
  if (!details) return;
  const text = message.thinking || '';
  details.hidden = !text;
  if (!text) return;
  // Open while there is no answer to read (streaming, or stopped while thinking); closed once
  // when the answer starts. Between those the reader's own open or close is left alone.
  const answered = !!message.content;
  if (!answered && !details.dataset.state) {
    details.open = true;
    details.dataset.state = 'thinking';
  } else if (answered && details.dataset.state !== 'answered') {
    details.open = false;
    details.dataset.state = 'answered';
  }
  details.querySelector('summary').textContent = message.pending && !answered ? 'Thinking…' : 'Thinking';
  details.querySelector('.thinking-text').textContent = text;
}

function statsText(message) {
  const s = message.stats;
  const parts = [];
  if (s) {
    if (s.eval_count) parts.push(`${tokens(s.eval_count)} tokens`);
    if (s.tokens_per_second) parts.push(`${fixed(s.tokens_per_second, 1)} tokens/s`);
    if (s.ttft !== undefined && s.ttft !== null) parts.push(`first token ${fixed(s.ttft, 2)} s`);
    if (s.done_reason === 'length') parts.push('reached the token limit');
    if (s.remote_host) parts.push(`answered by ${s.remote_host}`);
  }
  if (message.stopped) parts.push('stopped by you');
  return parts.join(' · ');
}

function updateActions() {
  const messages = state.conversation.messages;
  const lastAssistant = [...messages].reverse().find((m) => m.role === 'assistant');
  for (const [message, element] of state.elements) {
    const actions = clear(element.querySelector('.msg-actions'));
    if (message.role !== 'assistant' || message.pending) continue;
    if (message.content) {
      actions.append(h('button', { type: 'button', class: 'small',
        onclick: (event) => copyText(message.content, event.currentTarget) }, 'Copy'));
    }
    if (message === lastAssistant && !state.controller) {
      actions.append(h('button', { type: 'button', class: 'small regenerate', onclick: regenerate }, 'Regenerate'));
    }
  }
}

function onMessageClick(event) {
  const button = event.target.closest('.copy-code');
  if (button) copyText(button.dataset.code || '', button);
}

function nearBottom() {
  const box = ui.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

// -- generation -----------------------------------------------------------------------------

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  if (!busy && document.activeElement === ui.stop) ui.prompt.focus();
}

function send() {
  const text = ui.prompt.value;
  if (!text.trim() || state.controller) return;
  if (!ui.picker.value) {
    showError(ui.error, 'Choose a model first, or download one in Discover.');
    return;
  }
  showError(ui.error, '');
  const conversation = state.conversation;
  conversation.model = ui.picker.value;
  const message = { role: 'user', content: text };
  conversation.messages.push(message);
  ui.messages.append(messageElement(message));
  ui.prompt.value = '';
  autosize();
  generate();
}

function regenerate() {
  if (state.controller) return;
  const messages = state.conversation.messages;
  while (messages.length && messages[messages.length - 1].role === 'assistant') {
    const dropped = messages.pop();
    state.elements.get(dropped)?.remove();
    state.elements.delete(dropped);
  }
  if (!messages.length) return;
  state.conversation.model = ui.picker.value || state.conversation.model;
  generate();
}

function stop() {
  if (state.controller) state.controller.abort();
}

function requestMessages(conversation, upTo) {
  const messages = [];
  if (conversation.system.trim()) messages.push({ role: 'system', content: conversation.system });
  for (const message of conversation.messages) {
    if (message === upTo) break;
    if (message.role === 'assistant' && !message.content) continue;
    const sent = { role: message.role, content: message.content };
    // Sent back as Ollama's CLI does; a template that drops earlier reasoning (Qwen3's) does so itself.
    if (message.role === 'assistant' && message.thinking) sent.thinking = message.thinking;
    messages.push(sent);
  }
  return messages;
}

async function generate() {
  const conversation = state.conversation;
  const answer = { role: 'assistant', content: '', model: conversation.model, pending: true };
  conversation.messages.push(answer);
  ui.messages.append(messageElement(answer));
  ui.messages.scrollTop = ui.messages.scrollHeight;
  // Saved now, so the question is kept (and listed) even if the page goes away mid-answer.
  const saveProblem = conversations.save(conversation);
  if (saveProblem) showError(ui.error, saveProblem);
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  updateActions();
  const body = { model: conversation.model, messages: requestMessages(conversation, answer), stream: true };
  if (Object.keys(conversation.options || {}).length) body.options = conversation.options;
  if (conversation.think) body.think = true;

  const started = performance.now();
  let ttft = null;
  let scheduled = false;
  const paint = () => {
    scheduled = false;
    const stick = nearBottom();
    fillMessage(answer);
    if (stick) ui.messages.scrollTop = ui.messages.scrollHeight;
  };
  try {
    for await (const chunk of stream('/api/chat', body, controller.signal)) {
      const piece = chunk.message?.content || '';
      const thought = chunk.message?.thinking || '';
      if ((piece || thought) && ttft === null) ttft = (performance.now() - started) / 1000;
      answer.content += piece;
      if (thought) answer.thinking = (answer.thinking || '') + thought;
      if (chunk.done) {
        const seconds = chunk.eval_duration ? chunk.eval_duration / 1e9 : 0;
        answer.stats = {
          eval_count: chunk.eval_count,
          eval_duration: chunk.eval_duration,
          prompt_eval_count: chunk.prompt_eval_count,
          total_duration: chunk.total_duration,
          tokens_per_second: seconds && chunk.eval_count ? chunk.eval_count / seconds : null,
          ttft,
          done_reason: chunk.done_reason,
          remote_host: chunk.remote_host,
        };
      }
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(paint);
      }
    }
  } catch (error) {
    if (isAbort(error)) answer.stopped = true;
    else answer.error = state.leaving ? CUT_SHORT : error.message;
    if (answer.stopped && !answer.stats) answer.stats = { ttft };
  } finally {
    delete answer.pending;
    if (state.controller === controller) {
      state.controller = null;
      setBusy(false);
    }
    paint();
    updateActions();
    const problem = conversations.save(conversation);
    if (problem) showError(ui.error, problem);
  }
}
