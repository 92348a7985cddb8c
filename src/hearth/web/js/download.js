// One model download (POST /api/pull, streamed) shown as a live progress bar: bytes, speed,
// time left, and a Cancel button that aborts the request (the server then stops the
// download and keeps what it has for a later resume). A license that must be accepted first
// opens a dialog; accepting retries the pull with accept_license.

import { isAbort, stream } from './api.js';
import { licenseDialog } from './dialogs.js';
import { h, showError } from './dom.js';
import { bytes, duration, rate } from './format.js';

const SPEED_WINDOW_MS = 5000;

export function startDownload(name, container, { onSuccess, onFinish } = {}) {
  const status = h('span', { class: 'download-status' }, 'starting…');
  const percent = h('span', { class: 'download-percent' }, '');
  const bar = h('progress', { max: '100', value: '0', 'aria-label': `Download of ${name}` });
  const numbers = h('div', { class: 'download-numbers' });
  const error = h('div', { class: 'error', role: 'alert', hidden: true });
  const cancel = h('button', { type: 'button', class: 'small' }, 'Cancel');
  const box = h('div', { class: 'download', dataset: { model: name } },
    h('div', { class: 'download-head' }, h('strong', {}, name), status, percent),
    bar, numbers, error, h('div', { class: 'download-actions' }, cancel));
  // Finished downloads make way; one still running stays, so it can still be followed and cancelled.
  for (const old of container.querySelectorAll('.download:not([data-state="running"])')) old.remove();
  container.append(box);

  let controller = null;
  let samples = [];
  let currentKey = null;
  let last = null; // the latest event with sizes
  const started = performance.now();
  cancel.addEventListener('click', () => controller?.abort());

  const show = (event) => {
    status.textContent = event.status;
    if (!event.total) return;
    const key = event.digest || event.status;
    if (key !== currentKey) {
      currentKey = key;
      samples = [];
    }
    const now = performance.now();
    const completed = event.completed || 0;
    last = { completed, total: event.total };
    samples.push([now, completed]);
    while (samples.length > 2 && now - samples[0][0] > SPEED_WINDOW_MS) samples.shift();
    const [t0, c0] = samples[0];
    const speed = now > t0 ? ((completed - c0) * 1000) / (now - t0) : 0;
    const share = Math.min(100, (completed / event.total) * 100);
    bar.value = share;
    percent.textContent = `${Math.floor(share)}%`;
    const left = speed > 0 ? duration((event.total - completed) / speed) : '–';
    numbers.textContent = `${bytes(completed)} of ${bytes(event.total)} · ${rate(speed)} · ${left} left`;
  };

  const finish = (text, state) => {
    status.textContent = text;
    box.dataset.state = state;
    cancel.hidden = true;
    controller = null;
    if (onFinish) onFinish(state);
  };

  async function pull(acceptLicense) {
    controller = new AbortController();
    box.dataset.state = 'running';
    const body = { model: name, stream: true };
    if (acceptLicense) body.accept_license = true;
    try {
      for await (const event of stream('/api/pull', body, controller.signal)) show(event);
      bar.value = 100;
      percent.textContent = '100%';
      if (last) numbers.textContent = `${bytes(last.total)} in ${duration((performance.now() - started) / 1000)}`;
      finish('downloaded', 'done');
      if (onSuccess) onSuccess(name);
    } catch (problem) {
      if (isAbort(problem)) {
        if (last) numbers.textContent = `stopped at ${bytes(last.completed)} of ${bytes(last.total)}`;
        finish('cancelled', 'cancelled');
        return;
      }
      if (problem.status === 403 && problem.body?.needs_acceptance && !acceptLicense) {
        status.textContent = 'waiting for license acceptance';
        const accepted = await licenseDialog(name, problem.body.license, problem.body.error);
        if (accepted) {
          await pull(true);
          return;
        }
        finish('cancelled: license not accepted', 'cancelled');
        return;
      }
      showError(error, problem.message);
      if (last) numbers.textContent = `stopped at ${bytes(last.completed)} of ${bytes(last.total)}`;
      finish('failed', 'failed');
    }
  }

  pull(false);
  return box;
}
