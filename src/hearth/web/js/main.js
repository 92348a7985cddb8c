// Start the app: theme, the four views behind hash routes (#/chat, #/models, #/discover,
// #/server), the settings dialog and a first check that the server answers.

import { ApiError, getJSON } from './api.js';
import { initChat, refreshModels, showChat } from './chat.js';
import { openDialog } from './dialogs.js';
import { initDiscover, showDiscover } from './discover.js';
import { $, h, showError } from './dom.js';
import { initModels, showModels } from './models.js';
import { hideServer, initServer, showServer } from './server.js';
import { applyTheme, effectiveTheme, settings } from './settings.js';

const VIEWS = {
  chat: { show: showChat },
  models: { show: showModels },
  discover: { show: showDiscover },
  server: { show: showServer, hide: hideServer },
};

let current = null;

function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const view = VIEWS[name] ? name : 'chat';
  if (view === current) return;
  if (current) {
    VIEWS[current].hide?.();
    $(`#view-${current}`).hidden = true;
  }
  current = view;
  $(`#view-${view}`).hidden = false;
  for (const link of document.querySelectorAll('nav.tabs a')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `hearth · ${view[0].toUpperCase()}${view.slice(1)}`;
  VIEWS[view].show();
}

function toggleTheme() {
  const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
  settings.setTheme(next);
  applyTheme(next);
  updateThemeButton();
}

function updateThemeButton() {
  const button = $('#theme-toggle');
  const dark = effectiveTheme() === 'dark';
  button.textContent = dark ? '☀' : '☾';
  button.setAttribute('aria-label', dark ? 'Switch to the light theme' : 'Switch to the dark theme');
  button.title = button.getAttribute('aria-label');
}

async function openSettings() {
  const key = h('input', { type: 'password', id: 'settings-api-key', autocomplete: 'off', value: settings.apiKey(),
    'aria-describedby': 'settings-api-key-help' });
  const theme = h('select', { id: 'settings-theme' },
    [['system', 'Same as the system'], ['light', 'Light'], ['dark', 'Dark']].map(([value, label]) => (
      h('option', { value, selected: settings.theme() === value }, label))));
  const saved = await openDialog({
    title: 'Settings',
    body: [
      h('label', { class: 'field' }, 'API key', key),
      h('p', { class: 'hint', id: 'settings-api-key-help' },
        'Only needed when the server was started with HEARTH_API_KEY. Kept in this browser and sent as ',
        h('code', {}, 'Authorization: Bearer …'), ' to this server only.'),
      h('label', { class: 'field' }, 'Theme', theme),
    ],
    actions: [{ label: 'Cancel', value: false }, { label: 'Save', value: true, className: 'primary' }],
    submitValue: true,
  });
  if (!saved) return;
  settings.setApiKey(key.value);
  settings.setTheme(theme.value);
  applyTheme();
  updateThemeButton();
  await checkServer();
  refreshModels();
}

// The banner says what stops the app from working: no server, or a missing API key.
async function checkServer() {
  const banner = $('#banner');
  try {
    const version = await getJSON('/api/version');
    $('#server-version').textContent = `v${version.hearth_version || version.version}`;
    await getJSON('/api/tags');
    showError(banner, '');
  } catch (error) {
    const message = error instanceof ApiError && error.status === 401
      ? 'This server needs an API key: open Settings and enter the value of HEARTH_API_KEY.'
      : error.message;
    showError(banner, message);
  }
}

function start() {
  applyTheme();
  updateThemeButton();
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', updateThemeButton);
  $('#theme-toggle').addEventListener('click', toggleTheme);
  $('#settings-open').addEventListener('click', openSettings);
  initChat();
  initModels();
  initDiscover();
  initServer();
  window.addEventListener('hashchange', route);
  route();
  checkServer();
}

start();
