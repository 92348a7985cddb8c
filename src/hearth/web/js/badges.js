// Small labels shown next to models: license (may it be used commercially?), fit (will it
// run in this machine's memory?), predicted speed, loaded, cloud.

import { h } from './dom.js';
import { bytes } from './format.js';

const COMMERCIAL = {
  yes: ['ok', 'commercial use: yes'],
  no: ['bad', 'commercial use: no'],
  conditional: ['warn', 'commercial use: with conditions'],
  unknown: ['muted', 'commercial use: unknown'],
};

export function licenseBadge(summary, fallbackId = '') {
  if (!summary) {
    return fallbackId ? h('span', { class: 'badge muted', title: 'license' }, fallbackId) : null;
  }
  const [tone, use] = COMMERCIAL[summary.commercial_use] || COMMERCIAL.unknown;
  const name = summary.id || summary.name || fallbackId || 'no license found';
  const details = [summary.name || name, use];
  if (summary.restrictions?.length) details.push(...summary.restrictions);
  if (summary.needs_acceptance) details.push('must be accepted before download');
  return h('span', { class: `badge ${tone}`, title: details.join('\n') },
    name, h('span', { class: 'badge-sub' }, `· ${use}`));
}

const FIT = {
  fits: ['ok', 'fits'],
  tight: ['warn', 'tight'],
  'too large': ['bad', 'too large'],
  unknown: ['muted', 'fit unknown'],
};

export function fitBadge(fit) {
  if (!fit) return null;
  const [tone, label] = FIT[fit.verdict] || ['muted', fit.verdict];
  const title = `needs about ${bytes(fit.total_bytes)} (weights ${bytes(fit.weights_bytes)}, `
    + `context ${bytes(fit.kv_cache_bytes)}); available ${bytes(fit.available_bytes)}`
    + (fit.context_length ? ` at a context of ${fit.context_length} tokens` : '');
  return h('span', { class: `badge ${tone}`, title }, label);
}

// Predicted decode speed (prompt speed and how it was computed in the tooltip), or a muted
// "speed not measured" with the command that measures this machine.
export function speedBadge(fit) {
  if (!fit) return null;
  if (fit.decode_tokens_per_second === null || fit.decode_tokens_per_second === undefined) {
    return fit.speed_basis
      ? h('span', { class: 'badge muted speed', title: fit.speed_basis }, 'speed not predicted')
      : null;
  }
  const decode = tokensPerSecond(fit.decode_tokens_per_second);
  const title = `predicted: generates ${decode}, reads a prompt at `
    + `${tokensPerSecond(fit.prompt_tokens_per_second)}\n${fit.speed_basis}`;
  return h('span', { class: 'badge muted speed', title }, `≈ ${decode} (predicted)`);
}

function tokensPerSecond(value) {
  if (value === null || value === undefined) return '–';
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} tok/s`;
}

export function cloudBadge(endpoint) {
  return h('span', { class: 'badge cloud', title: endpoint ? `prompts are sent to ${endpoint}` : '' },
    'cloud: data leaves this machine');
}

export function loadedBadge(loaded) {
  return loaded ? h('span', { class: 'badge ok' }, 'loaded') : h('span', { class: 'badge muted' }, 'not loaded');
}

export function plainBadge(text, title = '') {
  return text ? h('span', { class: 'badge muted', title }, text) : null;
}
