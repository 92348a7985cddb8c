// The Models view: installed models with size, quantization, parameters, context length,
// license and fit; loaded or not; unload, delete and a details view.

import { getJSON, postJSON, request } from './api.js';
import { fitBadge, licenseBadge, loadedBadge, plainBadge } from './badges.js';
import { chatWith } from './chat.js';
import { confirmDialog, openDialog } from './dialogs.js';
import { $, clear, h, showError } from './dom.js';
import { bytes, count, tokens } from './format.js';

let ui;

export function initModels() {
  ui = { list: $('#models-list'), error: $('#models-error') };
  $('#models-refresh').addEventListener('click', () => refreshModelsView());
  window.addEventListener('hearth:models-changed', () => {
    if (!$('#view-models').hidden) refreshModelsView();
  });
}

export function showModels() {
  refreshModelsView();
}

export function modelsChanged() {
  window.dispatchEvent(new CustomEvent('hearth:models-changed'));
}

export async function refreshModelsView() {
  let tags;
  let running;
  let facts;
  try {
    [tags, running, facts] = await Promise.all([
      getJSON('/api/tags'),
      getJSON('/api/ps'),
      getJSON('/api/hearth/models').catch((error) => ({ error: error.message, models: [] })),
    ]);
  } catch (error) {
    showError(ui.error, `Could not list models: ${error.message}`);
    return;
  }
  showError(ui.error, facts.error ? `License and fit facts are not available: ${facts.error}` : '');
  const loaded = new Set((running.models || []).map((m) => m.name));
  const factsByName = new Map((facts.models || []).map((m) => [m.name, m]));
  clear(ui.list);
  if (!tags.models?.length) {
    ui.list.append(h('p', { class: 'empty' }, 'No models installed yet. ',
      h('a', { href: '#/discover' }, 'Find one in Discover'), '.'));
    return;
  }
  for (const model of tags.models) {
    ui.list.append(modelCard(model, factsByName.get(model.name), loaded.has(model.name)));
  }
}

function modelCard(model, facts = {}, loaded = false) {
  const error = h('div', { class: 'error', role: 'alert', hidden: true });
  const parameters = facts.parameter_count ? `${count(facts.parameter_count)} parameters`
    : model.details?.parameter_size ? `${model.details.parameter_size} parameters` : null;
  const run = async (button, work) => {
    button.disabled = true;
    showError(error, '');
    try {
      await work();
    } catch (problem) {
      showError(error, problem.message);
    } finally {
      button.disabled = false;
    }
  };
  const buttons = [
    h('button', { type: 'button', class: 'primary', onclick: () => { location.hash = '#/chat'; chatWith(model.name); } }, 'Chat'),
    h('button', { type: 'button', onclick: (e) => run(e.currentTarget, () => showDetails(model.name, facts)) }, 'Details'),
  ];
  if (loaded) {
    buttons.push(h('button', { type: 'button', onclick: (e) => run(e.currentTarget, async () => {
      await postJSON('/api/stop', { model: model.name });
      await refreshModelsView();
    }) }, 'Unload'));
  }
  buttons.push(h('button', { type: 'button', class: 'danger', onclick: (e) => run(e.currentTarget, async () => {
    const sure = await confirmDialog(`Delete ${model.name}?`,
      `${model.name} (${bytes(model.size)}) will be removed from this machine. Files other models share are kept.`,
      'Delete', true);
    if (!sure) return;
    await request('/api/delete', { method: 'DELETE', body: { model: model.name } });
    await refreshModelsView();
    modelsChanged();
  }) }, 'Delete'));
  return h('article', { class: 'card model-card', dataset: { model: model.name } },
    h('h2', {}, model.name),
    h('p', { class: 'meta' }, [bytes(model.size), parameters, model.details?.quantization_level || facts.quantization,
      facts.context_length ? `${tokens(facts.context_length)} context` : null].filter(Boolean).join(' · ')),
    h('div', { class: 'badges' }, licenseBadge(facts.license, facts.license_id), fitBadge(facts.fit), loadedBadge(loaded),
      facts.error ? plainBadge('facts unavailable', facts.error) : null),
    error,
    h('div', { class: 'card-actions' }, buttons));
}

function preBlock(text) {
  return h('pre', { class: 'text-block' }, text || '(none)');
}

async function showDetails(name, facts = {}) {
  const show = await postJSON('/api/show', { model: name });
  const info = show.model_info || {};
  const arch = info['general.architecture'] || facts.architecture || '';
  const summary = [
    ['Architecture', arch],
    ['Parameters', facts.parameter_count ? count(facts.parameter_count) : show.details?.parameter_size],
    ['Quantization', show.details?.quantization_level || facts.quantization],
    ['Context length', facts.context_length || info[`${arch}.context_length`]],
    ['Format', show.details?.format],
    ['License', facts.license?.name || facts.license_id || info['general.license']],
  ].filter(([, value]) => value !== undefined && value !== null && value !== '');
  const metadata = Object.entries(info).sort(([a], [b]) => a.localeCompare(b));
  const body = [
    h('dl', { class: 'facts' }, summary.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])),
    h('div', { class: 'badges' }, licenseBadge(facts.license, facts.license_id), fitBadge(facts.fit)),
    h('details', { open: true }, h('summary', {}, 'License text'), preBlock(show.license)),
    h('details', {}, h('summary', {}, 'Chat template'), preBlock(show.template)),
  ];
  if (show.system) body.push(h('details', {}, h('summary', {}, 'System prompt'), preBlock(show.system)));
  if (show.parameters) body.push(h('details', {}, h('summary', {}, 'Parameters'), preBlock(show.parameters)));
  body.push(h('details', {}, h('summary', {}, `Metadata (${metadata.length})`),
    h('div', { class: 'table-wrap' }, h('table', { class: 'metadata' }, h('tbody', {}, metadata.map(([key, value]) => (
      h('tr', {}, h('th', { scope: 'row' }, key), h('td', {}, typeof value === 'object' ? JSON.stringify(value) : String(value))))))))));
  await openDialog({ title: name, className: 'details-dialog', body, actions: [{ label: 'Close', value: true, autofocus: true }] });
}
