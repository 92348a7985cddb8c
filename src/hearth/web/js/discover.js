// The Discover view: search the catalog, see each model's license, whether it fits this
// machine and how fast it is predicted to run here, choose a quantization and download it; or
// download anything by name or URL.

import { getJSON } from './api.js';
import { fitBadge, licenseBadge, plainBadge, speedBadge } from './badges.js';
import { $, clear, h, showError } from './dom.js';
import { startDownload } from './download.js';
import { bytes, tokens } from './format.js';
import { modelsChanged } from './models.js';

let ui;
let searched = false;
let searchSerial = 0;

export function initDiscover() {
  ui = {
    form: $('#search-form'),
    input: $('#search-input'),
    results: $('#catalog-results'),
    error: $('#discover-error'),
    pullForm: $('#pull-form'),
    pullInput: $('#pull-input'),
    pullProgress: $('#pull-progress'),
  };
  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    search(ui.input.value);
  });
  ui.pullForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = ui.pullInput.value.trim();
    if (!name) return;
    startDownload(name, ui.pullProgress, { onSuccess: downloaded });
  });
}

export function showDiscover() {
  if (!searched) search('');
  ui.input.focus();
}

function downloaded() {
  modelsChanged();
  if (searched) search(ui.input.value, true);
}

async function search(query, quiet = false) {
  searched = true;
  const serial = ++searchSerial;
  if (!quiet) ui.results.setAttribute('aria-busy', 'true');
  try {
    const found = await getJSON(`/api/hearth/catalog?q=${encodeURIComponent(query.trim())}`);
    if (serial !== searchSerial) return;
    showError(ui.error, '');
    renderResults(found.entries || [], query);
  } catch (error) {
    if (serial === searchSerial) showError(ui.error, `Search failed: ${error.message}`);
  } finally {
    ui.results.removeAttribute('aria-busy');
  }
}

function renderResults(entries, query) {
  // Cards with a download (running or finished) are kept as they are.
  const running = new Map([...ui.results.querySelectorAll('.catalog-card')]
    .filter((card) => card.querySelector('.download'))
    .map((card) => [card.dataset.model, card]));
  clear(ui.results);
  if (!entries.length) {
    ui.results.append(h('p', { class: 'empty' }, query.trim()
      ? `Nothing in the catalog matches "${query.trim()}". You can still download by name or URL above.`
      : 'The catalog is empty.'));
    return;
  }
  for (const entry of entries) ui.results.append(running.get(entry.model) || catalogCard(entry));
}

function tagLabel(tag) {
  return [tag.tag, tag.quantization, tag.parameter_size, tag.size ? bytes(tag.size) : null,
    tag.installed ? 'installed' : null].filter(Boolean).join(' · ');
}

function catalogCard(entry) {
  const badges = h('div', { class: 'badges' },
    licenseBadge(entry.license_summary, entry.license),
    entry.weights === 'closed' ? h('span', { class: 'badge warn' }, 'closed weights: API only') : plainBadge('open weights'),
    entry.context_length ? plainBadge(`${tokens(entry.context_length)} context`, 'trained context length') : null);
  const card = h('article', { class: 'card catalog-card', dataset: { model: entry.model } },
    h('h2', {}, entry.model, entry.publisher ? h('span', { class: 'publisher' }, ` by ${entry.publisher}`) : null),
    entry.description ? h('p', { class: 'description' }, entry.description) : null,
    badges);
  if (entry.weights === 'closed' || !entry.tags?.length) {
    card.append(h('p', { class: 'hint' }, entry.provider_hint || 'Its weights are not published: it runs only at its maker\'s API.'));
    return card;
  }
  const select = h('select', { 'aria-label': `Quantization of ${entry.model}` },
    entry.tags.map((tag, index) => h('option', { value: String(index) }, tagLabel(tag))));
  const fitSlot = h('span', { class: 'fit-slot badges' });
  const download = h('button', { type: 'button', class: 'primary' }, 'Download');
  const progress = h('div', { class: 'download-slot' });
  const selected = () => entry.tags[Number(select.value)];
  const update = () => {
    const tag = selected();
    // A tag under another license than its family shows that license too.
    fitSlot.replaceChildren(...[fitBadge(tag.fit), speedBadge(tag.fit), licenseBadge(tag.license_summary)]
      .filter(Boolean));
    const downloadable = tag.pull !== null;
    download.disabled = !downloadable;
    download.textContent = !downloadable ? 'No download source' : tag.installed ? 'Download again' : 'Download';
  };
  select.addEventListener('change', update);
  download.addEventListener('click', () => {
    const tag = selected();
    const option = select.selectedOptions[0];
    // One download per card at a time: a second click would hide the first one's progress.
    download.disabled = true;
    select.disabled = true;
    const box = startDownload(tag.pull || `${entry.model}:${tag.tag}`, progress, {
      onFinish: () => {
        select.disabled = false;
        update();
      },
      onSuccess: () => {
        tag.installed = true;
        option.textContent = tagLabel(tag);
        update();
        modelsChanged();
      },
    });
    box.querySelector('.download-actions button')?.focus();
  });
  update();
  card.append(h('div', { class: 'card-actions' }, h('label', { class: 'quant' }, 'Quantization ', select), fitSlot, download),
    progress);
  return card;
}
