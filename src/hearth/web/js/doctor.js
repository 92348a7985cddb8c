// The system check on the Server page: what `hearth doctor` reports (/api/hearth/doctor), the
// problems first with their fixes, then the facts a bug report needs.

import { getJSON } from './api.js';
import { $, clear, h } from './dom.js';
import { bytes } from './format.js';

let ui;
let checked = false;

export function initDoctor() {
  ui = { box: $('#doctor'), button: $('#doctor-run') };
  ui.button.addEventListener('click', () => runCheck(true));
}

// The check starts a test decode on the server, so it runs once per visit unless asked again.
export function showDoctor() {
  if (!checked) runCheck(false);
}

async function runCheck(fresh) {
  checked = true;
  ui.button.disabled = true;
  clear(ui.box).append(h('p', { class: 'hint' }, 'Checking… (a short test decode runs on the server)'));
  try {
    render(await getJSON(fresh ? '/api/hearth/doctor?fresh=true' : '/api/hearth/doctor'));
  } catch (error) {
    clear(ui.box).append(h('p', { class: 'error', role: 'alert' }, `Cannot run the check: ${error.message}`));
  } finally {
    ui.button.disabled = false;
  }
}

function findings(title, items, fixLabel, cls) {
  if (!items.length) return [];
  return [h('h3', {}, title), h('ul', { class: `findings ${cls}` }, items.map((item) => h('li', {},
    h('strong', {}, item.what), h('div', {}, `${fixLabel}: `, h('code', {}, item.fix)))))];
}

function engineText(report) {
  const engine = report.engine || {};
  if (!report.engine_build.installed) return 'not installed';
  let text = `llama-cpp-python ${engine.llama_cpp_python || '?'}`;
  if (engine.ggml_version) text += `, ggml ${engine.ggml_version} (commit ${engine.ggml_commit || '?'})`;
  return text;
}

function compiledIn(report) {
  const features = (report.engine || {}).features || {};
  return Object.entries(features).map(([section, values]) => `${section}: ${Object.entries(values)
    .filter(([, value]) => value !== '0').map(([key, value]) => (value === '1' ? key : `${key}=${value}`)).join(' ')}`).join('; ');
}

function buildText(record) {
  if (!record.built_by_hearth) return 'not made by hearth (installed by pip or by hand)';
  const left = (record.left_out || []).map((name) => name.toUpperCase()).join(', ') || 'nothing';
  return `hearth's, ${record.matches_this_machine ? 'for this machine' : 'NOT for this machine'}; left out: ${left}`
    + (record.portable ? '; portable' : '') + (record.build_seconds ? `; compiled in ${Math.round(record.build_seconds)} s` : '');
}

function selfTestText(test) {
  if (!test) return 'not run';
  if (!test.ok) return `FAILED: ${test.error}`;
  return `${test.model}: ${test.tokens} tokens at ${test.tokens_per_second} tok/s (prompt ${test.prompt_tokens_per_second} tok/s)`;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function render(report) {
  const { cpu, memory, home, server } = report;
  const rows = [
    ['hearth', `${report.hearth.version} · Python ${report.hearth.python} · ${report.hearth.platform}`],
    ['Engine', engineText(report)],
    ['Backends', ((report.engine || {}).backends || []).join(', ') || '–'],
    ['Compiled in', compiledIn(report) || '–'],
    ['Build', buildText(report.engine_build)],
    ['CPU', `${cpu.model}, ${cpu.architecture}, ${plural(cpu.cores, 'core')}, hearth uses ${cpu.threads == null ? '? threads' : plural(cpu.threads, 'thread')}`],
    ['Memory', `RAM ${bytes(memory.ram_available)} available of ${bytes(memory.ram_total)}; GPU ${memory.gpu_total ? `${bytes(memory.gpu_free)} free of ${bytes(memory.gpu_total)}` : 'none'}`],
    ['HEARTH_HOME', `${home.path}: ${home.writable ? 'writable' : 'NOT writable'}, ${home.disk_free == null ? '?' : bytes(home.disk_free)} free, ${home.models == null ? '? models' : plural(home.models, 'model')}`],
    ['Server', `${server.address || '?'}: ${server.running ? `hearth ${server.version} answers` : 'not answering'}`],
    ['Self-test', selfTestText(report.self_test)],
  ];
  const status = report.ok ? h('p', { class: 'badge ok doctor-status' }, 'All good')
    : h('p', { class: 'badge warn doctor-status', role: 'alert' }, `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`);
  clear(ui.box).append(status,
    ...findings('Problems', report.problems, 'fix', 'problems'),
    ...findings('Notes', report.notes, 'to change it', 'notes'),
    h('dl', { class: 'facts doctor-facts' }, rows.flatMap(([label, value]) => [h('dt', {}, label), h('dd', { dataset: { fact: label } }, value)])));
}
