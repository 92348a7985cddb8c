// What the browser remembers between visits (localStorage): the API key, the theme, the
// last model and parameters used. Conversations are in conversations.js.

const KEYS = {
  apiKey: 'hearth.apiKey',
  theme: 'hearth.theme',
  lastModel: 'hearth.lastModel',
  defaults: 'hearth.defaults',
};

function read(key, fallback = '') {
  try {
    const value = localStorage.getItem(key);
    return value === null ? fallback : value;
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    if (value === '' || value === null || value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Private windows may refuse storage; the app still works for this visit.
  }
}

export const settings = {
  apiKey: () => read(KEYS.apiKey),
  setApiKey: (key) => write(KEYS.apiKey, key.trim()),
  theme: () => read(KEYS.theme, 'system'),
  setTheme: (theme) => write(KEYS.theme, theme === 'system' ? '' : theme),
  lastModel: () => read(KEYS.lastModel),
  setLastModel: (name) => write(KEYS.lastModel, name),
  defaults() {
    try {
      return JSON.parse(read(KEYS.defaults, '{}')) || {};
    } catch {
      return {};
    }
  },
  setDefaults: (value) => write(KEYS.defaults, JSON.stringify(value)),
};

// The theme in effect: the saved choice, else the system's.
export function applyTheme(theme = settings.theme()) {
  const root = document.documentElement;
  if (theme === 'light' || theme === 'dark') root.dataset.theme = theme;
  else delete root.dataset.theme;
}

export function effectiveTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}
