// Modal dialogs built on <dialog>: Esc cancels, focus stays inside while open and returns to
// where it was afterwards.

import { h } from './dom.js';

// Show a dialog; resolves with the value of the button pressed (null when cancelled). With
// ``submitValue``, Enter in one of its text fields resolves with that value.
export function openDialog({ title, body = [], actions, className = '', label, submitValue }) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const buttons = actions.map((action) => h('button', {
      type: 'button',
      class: action.className || '',
      autofocus: action.autofocus || false,
      onclick: () => close(action.value),
    }, action.label));
    const dialog = h('dialog', { class: `dialog ${className}`, 'aria-label': label || title },
      h('h2', {}, title),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'dialog-actions' }, buttons));
    let done = false;
    function close(value) {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      if (previous && typeof previous.focus === 'function') previous.focus();
      resolve(value);
    }
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close(null);
    });
    if (submitValue !== undefined) {
      dialog.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && event.target.matches('input')) {
          event.preventDefault();
          close(submitValue);
        }
      });
    }
    document.body.append(dialog);
    dialog.showModal();
    const field = dialog.querySelector('.dialog-body input, .dialog-body select, .dialog-body textarea');
    const focus = field || buttons.find((b) => b.hasAttribute('autofocus')) || buttons[0];
    if (focus) focus.focus();
  });
}

export async function confirmDialog(title, message, confirmLabel = 'OK', danger = false) {
  const value = await openDialog({
    title,
    body: [h('p', {}, message)],
    actions: [
      { label: 'Cancel', value: false, autofocus: danger },
      { label: confirmLabel, value: true, className: danger ? 'danger' : 'primary', autofocus: !danger },
    ],
  });
  return value === true;
}

const USE_TEXT = { yes: 'Yes', no: 'No', conditional: 'With conditions', unknown: 'Unknown' };

// The license of a model that must be accepted before it is downloaded.
export async function licenseDialog(model, summary, message) {
  const facts = [
    ['License', summary?.name || summary?.id || 'unknown'],
    ['Commercial use', USE_TEXT[summary?.commercial_use] || 'Unknown'],
  ];
  if (summary?.attribution !== undefined && summary?.attribution !== null) facts.push(['Attribution', String(summary.attribution)]);
  if (summary?.redistribution !== undefined && summary?.redistribution !== null) facts.push(['Redistribution', String(summary.redistribution)]);
  const body = [
    h('p', {}, message || `${model} comes under a license you must accept before downloading it.`),
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
  ];
  if (summary?.restrictions?.length) {
    body.push(h('p', {}, 'Restrictions:'), h('ul', {}, summary.restrictions.map((r) => h('li', {}, r))));
  }
  if (summary?.url && /^https?:\/\//i.test(summary.url)) {
    body.push(h('p', {}, h('a', { href: summary.url, target: '_blank', rel: 'noopener noreferrer' }, 'Read the full license')));
  }
  const value = await openDialog({
    title: `Accept the license of ${model}?`,
    className: 'license-dialog',
    body,
    actions: [
      { label: 'Cancel', value: false, autofocus: true },
      { label: 'Accept and download', value: true, className: 'primary' },
    ],
  });
  return value === true;
}
