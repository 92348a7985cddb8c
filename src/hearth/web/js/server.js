// The Server view: loaded models with memory and keep-alive countdown (/api/ps), queue depth
// and speed (/metrics), remote providers, code to use this server from Python, and the system
// check (doctor.js).

import { getJSON, postJSON, request } from './api.js';
import { initDoctor, showDoctor } from './doctor.js';
import { $, clear, copyText, h, showError } from './dom.js';
import { bytes, duration, fixed, tokens } from './format.js';
import { modelsChanged } from './models.js';
import { settings } from './settings.js';

const POLL_MS = 2000;
const NEVER_AFTER_YEARS = 100;

let ui;
let pollTimer = null;
let tickTimer = null;
let loaded = [];
let shownSignature = null;

export function initServer() {
  ui = {
    stats: $('#server-stats'),
    loaded: $('#loaded-models'),
    error: $('#server-error'),
    providers: $('#providers-list'),
    snippets: $('#snippets'),
  };
  initDoctor();
}

export function showServer() {
  renderSnippets();
  poll();
  loadProviders();
  showDoctor();
  pollTimer = setInterval(poll, POLL_MS);
  tickTimer = setInterval(tick, 1000);
}

export function hideServer() {
  clearInterval(pollTimer);
  clearInterval(tickTimer);
  pollTimer = tickTimer = null;
}

// Prometheus text format: `name{label="value",...} number` per line; comments start with #.
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function metric(samples, name) {
  const found = samples.find((s) => s.name === name);
  return found ? found.value : null;
}

async function poll() {
  try {
    const [metricsText, ps] = await Promise.all([
      request('/metrics', {}).then((r) => r.text()),
      getJSON('/api/ps'),
    ]);
    showError(ui.error, '');
    renderStats(parseMetrics(metricsText));
    loaded = ps.models || [];
    // Rebuilt only when something other than the countdown changed, so focus stays put.
    const signature = JSON.stringify(loaded.map((m) => [m.name, m.size, m.size_vram, m.context_length, m.in_use, m.num_parallel]));
    if (signature !== shownSignature) renderLoaded();
    shownSignature = signature;
    tick();
  } catch (error) {
    showError(ui.error, `Cannot read the server's state: ${error.message}`);
  }
}

function renderStats(samples) {
  const requests = samples.filter((s) => s.name === 'hearth_requests_total').reduce((sum, s) => sum + s.value, 0);
  const tiles = [
    ['Queue depth', metric(samples, 'hearth_queue_depth'), 'requests waiting for a model'],
    ['Streams', metric(samples, 'hearth_active_streams'), 'answers being streamed now'],
    ['Tokens/s (last)', fixed(metric(samples, 'hearth_tokens_per_second'), 1), 'generation speed of the last request'],
    ['Tokens/s (average)', fixed(metric(samples, 'hearth_tokens_per_second_average'), 1), 'all generated tokens over generation time'],
    ['Tokens generated', tokens(metric(samples, 'hearth_generated_tokens_total')), 'since the server started'],
    ['Requests', tokens(requests), 'since the server started'],
  ];
  clear(ui.stats).append(...tiles.map(([label, value, title]) => h('div', { class: 'tile', title, dataset: { metric: label } },
    h('span', { class: 'tile-value' }, value === null ? '–' : String(value)),
    h('span', { class: 'tile-label' }, label))));
}

function countdown(expiresAt) {
  if (!expiresAt) return 'while in use';
  const left = (Date.parse(expiresAt) - Date.now()) / 1000;
  if (left > NEVER_AFTER_YEARS * 365 * 86400 / 2) return 'never';
  return left <= 0 ? 'now' : duration(left);
}

function tick() {
  for (const model of loaded) {
    const cell = ui.loaded.querySelector(`tr[data-model="${CSS.escape(model.name)}"] .countdown`);
    if (cell) cell.textContent = countdown(model.expires_at);
  }
}

function renderLoaded() {
  clear(ui.loaded);
  if (!loaded.length) {
    ui.loaded.append(h('p', { class: 'empty' }, 'No model is loaded. A model loads on its first request and stays for its keep-alive.'));
    return;
  }
  const rows = loaded.map((model) => {
    const error = h('span', { class: 'error inline', role: 'alert', hidden: true });
    const unload = h('button', { type: 'button', class: 'small', onclick: async () => {
      unload.disabled = true;
      try {
        await postJSON('/api/stop', { model: model.name });
        modelsChanged();
        await poll();
      } catch (problem) {
        showError(error, problem.message);
        unload.disabled = false;
      }
    } }, 'Unload');
    return h('tr', { dataset: { model: model.name } },
      h('th', { scope: 'row' }, model.name),
      h('td', {}, bytes(model.size)),
      h('td', {}, model.size_vram ? bytes(model.size_vram) : '–'),
      h('td', {}, tokens(model.context_length)),
      h('td', {}, `${model.in_use || 0} of ${model.num_parallel || 1}`),
      h('td', { class: 'countdown' }, countdown(model.expires_at)),
      h('td', {}, unload, error));
  });
  ui.loaded.append(h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Model', 'Memory', 'GPU memory', 'Context', 'Busy slots', 'Unloads in', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows))));
}

async function loadProviders() {
  try {
    const remote = await getJSON('/api/hearth/remote?list=false');
    clear(ui.providers);
    if (remote.offline) ui.providers.append(h('p', { class: 'hint' }, 'HEARTH_OFFLINE=1: no remote provider is called.'));
    ui.providers.append(h('ul', { class: 'providers' }, remote.providers.map((provider) => h('li', {},
      h('strong', {}, provider.name), ` ${provider.endpoint} `,
      provider.ready ? h('span', { class: 'badge cloud' }, 'ready: data leaves this machine')
        : h('span', { class: 'badge muted' }, provider.key_env ? `set ${provider.key_env} to use` : 'no key')))));
  } catch (error) {
    clear(ui.providers).append(h('p', { class: 'error' }, `Cannot list providers: ${error.message}`));
  }
}

function snippetTexts() {
  const origin = location.origin;
  const key = settings.apiKey() ? 'os.environ["HEARTH_API_KEY"]' : '"hearth"';
  const keyNote = settings.apiKey() ? '' : '# This server needs no API key: any text will do.\n';
  const ollamaHeaders = settings.apiKey() ? ',\n                headers={"Authorization": f"Bearer {os.environ[\'HEARTH_API_KEY\']}"}' : '';
  const imports = settings.apiKey() ? 'import os\n\n' : '';
  return [
    ['openai', 'pip install openai', `${imports}from openai import OpenAI

${keyNote}client = OpenAI(base_url="${origin}/v1", api_key=${key})
answer = client.chat.completions.create(
    model="smollm2",
    messages=[{"role": "user", "content": "Why is the sky blue?"}],
)
print(answer.choices[0].message.content)
`],
    ['ollama', 'pip install ollama', `${imports}from ollama import Client

client = Client(host="${origin}"${ollamaHeaders})
answer = client.chat(model="smollm2", messages=[{"role": "user", "content": "Why is the sky blue?"}])
print(answer.message.content)
`],
    ['curl', '', `curl ${origin}/api/chat -d '{"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}]}'${settings.apiKey() ? ' \\\n  -H "Authorization: Bearer $HEARTH_API_KEY"' : ''}
`],
  ];
}

function renderSnippets() {
  clear(ui.snippets);
  for (const [name, install, code] of snippetTexts()) {
    const copy = h('button', { type: 'button', class: 'small', onclick: (e) => copyText(code, e.currentTarget) }, 'Copy');
    ui.snippets.append(h('section', { class: 'snippet', dataset: { client: name } },
      h('div', { class: 'code-bar' }, h('span', {}, name + (install ? ` (${install})` : '')), copy),
      h('pre', {}, h('code', { class: `snippet-${name}` }, code))));
  }
}
