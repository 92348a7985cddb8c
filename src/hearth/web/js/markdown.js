// A small Markdown renderer for model answers. It builds DOM nodes directly and puts every
// piece of text in as a text node, so model output can never become HTML: a "<script>" in an
// answer shows as the characters < s c r i p t >. Links are kept only for http(s) and mailto.
//
// Supported: headings, paragraphs (single newlines kept as line breaks), fenced code blocks
// (also unclosed ones while an answer streams) with a small keyword highlighter, bullet and
// numbered lists (nested by indentation), block quotes, tables, horizontal rules, and inline
// code, bold, italic, strikethrough, links and bare URLs.

import { highlight } from './highlight.js';

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+|$)/;
const TABLE_DIVIDER = /^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$/;
const SAFE_URL = /^(https?:\/\/|mailto:)/i;

export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  renderBlocks(String(text ?? '').replace(/\r\n?/g, '\n').split('\n'), fragment);
  return fragment;
}

function renderBlocks(lines, parent) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    let match;
    if ((match = FENCE.exec(line))) {
      i = codeBlock(lines, i, match, parent);
    } else if ((match = HEADING.exec(line))) {
      const heading = document.createElement(`h${match[1].length}`);
      inline(match[2], heading);
      parent.append(heading);
      i += 1;
    } else if (RULE.test(line)) {
      parent.append(document.createElement('hr'));
      i += 1;
    } else if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && lines[i].trim() && QUOTE.test(lines[i])) {
        quoted.push(lines[i].replace(QUOTE, ''));
        i += 1;
      }
      const quote = document.createElement('blockquote');
      renderBlocks(quoted, quote);
      parent.append(quote);
    } else if (ITEM.test(line)) {
      i = list(lines, i, parent);
    } else if (isTableStart(lines, i)) {
      i = table(lines, i, parent);
    } else {
      i = paragraph(lines, i, parent);
    }
  }
}

function startsBlock(lines, i) {
  const line = lines[i];
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
    || ITEM.test(line) || isTableStart(lines, i);
}

function paragraph(lines, i, parent) {
  const p = document.createElement('p');
  let first = true;
  while (i < lines.length && lines[i].trim() && (first || !startsBlock(lines, i))) {
    if (!first) p.append(document.createElement('br'));
    inline(lines[i].trim(), p);
    first = false;
    i += 1;
  }
  parent.append(p);
  return i;
}

function codeBlock(lines, i, match, parent) {
  const fence = match[1];
  const language = match[2].toLowerCase();
  const body = [];
  i += 1;
  while (i < lines.length) {
    const closing = lines[i].trim();
    if (closing.startsWith(fence[0].repeat(fence.length)) && /^(`+|~+)$/.test(closing)) {
      i += 1;
      break;
    }
    body.push(lines[i]);
    i += 1;
  }
  const code = document.createElement('code');
  if (language) code.className = `language-${language.replace(/[^a-z0-9+#-]/g, '')}`;
  code.append(highlight(body.join('\n'), language));
  const pre = document.createElement('pre');
  pre.append(code);
  const block = document.createElement('div');
  block.className = 'code-block';
  const bar = document.createElement('div');
  bar.className = 'code-bar';
  const label = document.createElement('span');
  label.textContent = language || 'text';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'copy-code';
  copy.textContent = 'Copy';
  copy.dataset.code = body.join('\n');
  bar.append(label, copy);
  block.append(bar, pre);
  parent.append(block);
  return i;
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

function list(lines, i, parent) {
  const first = ITEM.exec(lines[i]);
  const ordered = /\d/.test(first[2]);
  const baseIndent = first[1].length;
  const element = document.createElement(ordered ? 'ol' : 'ul');
  if (ordered) {
    const start = parseInt(first[2], 10);
    if (start !== 1) element.start = start;
  }
  const items = [];
  let item = null;
  let loose = false;
  while (i < lines.length) {
    const line = lines[i];
    const match = ITEM.exec(line);
    if (match && match[1].length === baseIndent && /\d/.test(match[2]) === ordered) {
      item = { lines: [line.slice(match[0].length)], contentIndent: match[0].length };
      items.push(item);
      i += 1;
      continue;
    }
    if (!line.trim()) {
      // A blank line ends the list unless the list or the item goes on after it.
      const next = lines.slice(i + 1).find((l) => l.trim());
      const nextIndex = lines.indexOf(next, i + 1);
      if (next === undefined) break;
      const nextItem = ITEM.exec(next);
      if ((nextItem && nextItem[1].length === baseIndent) || indentOf(next) > baseIndent) {
        loose = true;
        item.lines.push('');
        i = nextIndex;
        continue;
      }
      break;
    }
    if (indentOf(line) > baseIndent) {
      item.lines.push(line.slice(Math.min(indentOf(line), item.contentIndent)));
      i += 1;
      continue;
    }
    if (match) break;
    // A lazy continuation line of the item's paragraph.
    if (!startsBlock(lines, i)) {
      item.lines.push(line.trim());
      i += 1;
      continue;
    }
    break;
  }
  for (const data of items) {
    const li = document.createElement('li');
    const inner = document.createDocumentFragment();
    renderBlocks(data.lines, inner);
    // Tight lists hold their text directly, not in paragraphs.
    if (!loose) {
      for (const child of [...inner.childNodes]) {
        if (child.nodeName === 'P') child.replaceWith(...child.childNodes);
      }
    }
    li.append(inner);
    element.append(li);
  }
  parent.append(element);
  return i;
}

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  const cells = [];
  let current = '';
  let inCode = false;
  for (let k = 0; k < row.length; k += 1) {
    const ch = row[k];
    if (ch === '\\' && row[k + 1] === '|') {
      current += '|';
      k += 1;
    } else if (ch === '`') {
      inCode = !inCode;
      current += ch;
    } else if (ch === '|' && !inCode) {
      cells.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  cells.push(current.trim());
  return cells;
}

function isTableStart(lines, i) {
  return i + 1 < lines.length && lines[i].includes('|') && TABLE_DIVIDER.test(lines[i + 1])
    && lines[i + 1].includes('-');
}

function table(lines, i, parent) {
  const header = splitRow(lines[i]);
  const aligns = splitRow(lines[i + 1]).map((cell) => {
    const left = cell.startsWith(':');
    const right = cell.endsWith(':');
    return left && right ? 'center' : right ? 'right' : left ? 'left' : '';
  });
  const element = document.createElement('table');
  const head = element.createTHead().insertRow();
  header.forEach((cell, k) => {
    const th = document.createElement('th');
    if (aligns[k]) th.className = `align-${aligns[k]}`;
    inline(cell, th);
    head.append(th);
  });
  const body = element.createTBody();
  i += 2;
  while (i < lines.length && lines[i].trim() && lines[i].includes('|')) {
    const row = body.insertRow();
    splitRow(lines[i]).slice(0, header.length).forEach((cell, k) => {
      const td = row.insertCell();
      if (aligns[k]) td.className = `align-${aligns[k]}`;
      inline(cell, td);
    });
    i += 1;
  }
  const wrapper = document.createElement('div');
  wrapper.className = 'table-wrap';
  wrapper.append(element);
  parent.append(wrapper);
  return i;
}

// -- inline ---------------------------------------------------------------------------------

const ESCAPABLE = '\\`*_{}[]()#+-.!|~<>"\'';
const BARE_URL = /^https?:\/\/[^\s<>"'`]+/i;

function link(label, url) {
  const trimmed = url.trim();
  if (!SAFE_URL.test(trimmed)) return null;
  const a = document.createElement('a');
  a.href = trimmed;
  a.rel = 'noopener noreferrer nofollow';
  a.target = '_blank';
  if (typeof label === 'string') a.textContent = label;
  else a.append(label);
  return a;
}

function emphasis(tag, inner, parent) {
  const element = document.createElement(tag);
  inline(inner, element);
  parent.append(element);
}

// Where a closing delimiter matches an opening one at ``start``, or -1.
function closing(text, delimiter, start) {
  let k = start;
  while ((k = text.indexOf(delimiter, k)) >= 0) {
    if (k > start && !/\s/.test(text[k - 1]) && text[k - 1] !== '\\') return k;
    k += 1;
  }
  return -1;
}

export function inline(text, parent) {
  // Where a search for each delimiter's closer has already failed: no closer exists after
  // that point either, so later openers need not scan again (text full of lone '*' stays fast).
  const noCloserFrom = {};
  const closer = (delimiter, start) => {
    if (start >= (noCloserFrom[delimiter] ?? Infinity)) return -1;
    const end = closing(text, delimiter, start);
    if (end < 0) noCloserFrom[delimiter] = start;
    return end;
  };
  let plain = '';
  const flush = () => {
    if (plain) parent.append(document.createTextNode(plain));
    plain = '';
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\\' && ESCAPABLE.includes(text[i + 1] || '')) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === '`') {
      const ticks = /^`+/.exec(text.slice(i))[0];
      const end = text.indexOf(ticks, i + ticks.length);
      if (end > 0) {
        flush();
        const code = document.createElement('code');
        code.textContent = text.slice(i + ticks.length, end).replace(/^ (.*) $/, '$1');
        parent.append(code);
        i = end + ticks.length;
        continue;
      }
      plain += ticks;
      i += ticks.length;
      continue;
    }
    if ((ch === '*' || ch === '_' || ch === '~') && text[i + 1] === ch && text[i + 2] && !/\s/.test(text[i + 2])) {
      const delimiter = ch + ch;
      const end = closer(delimiter, i + 2);
      if (end > 0) {
        flush();
        emphasis(ch === '~' ? 'del' : 'strong', text.slice(i + 2, end), parent);
        i = end + 2;
        continue;
      }
    }
    if ((ch === '*' || ch === '_') && text[i + 1] && !/\s/.test(text[i + 1]) && text[i + 1] !== ch) {
      // Underscores inside words (snake_case) are not emphasis.
      const wordBefore = ch === '_' && i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1]);
      const end = wordBefore ? -1 : closer(ch, i + 1);
      const wordAfter = ch === '_' && end > 0 && /[\p{L}\p{N}]/u.test(text[end + 1] || '');
      if (end > 0 && !wordAfter && text[end + 1] !== ch) {
        flush();
        emphasis('em', text.slice(i + 1, end), parent);
        i = end + 1;
        continue;
      }
    }
    if (ch === '[') {
      const match = /^\[((?:[^[\]\\]|\\.)*)\]\(\s*<?([^\s()<>]*)>?(?:\s+"[^"]*")?\s*\)/.exec(text.slice(i));
      if (match) {
        const label = document.createDocumentFragment();
        inline(match[1], label);
        const anchor = link(label, match[2]);
        flush();
        if (anchor) parent.append(anchor);
        else parent.append(label); // an unsafe or relative link keeps only its text
        i += match[0].length;
        continue;
      }
    }
    if (ch === '<') {
      const match = /^<(https?:\/\/[^\s<>]+|mailto:[^\s<>]+)>/i.exec(text.slice(i));
      if (match) {
        flush();
        parent.append(link(match[1], match[1]));
        i += match[0].length;
        continue;
      }
    }
    if ((ch === 'h' || ch === 'H') && (i === 0 || /[\s(]/.test(text[i - 1]))) {
      const match = BARE_URL.exec(text.slice(i));
      if (match) {
        // Sentence punctuation after a URL is not part of it.
        const url = match[0].replace(/[.,;:!?)]+$/, '');
        flush();
        parent.append(link(url, url));
        i += url.length;
        continue;
      }
    }
    plain += ch;
    i += 1;
  }
  flush();
  return parent;
}
