// A tiny syntax highlighter for code blocks: comments, strings, numbers, keywords and function
// names, with one set of rules per language family. It returns text nodes and <span>s; the
// code itself is only ever text.

const HASH_COMMENTS = new Set(['python', 'py', 'sh', 'bash', 'shell', 'zsh', 'console', 'ruby', 'rb',
  'yaml', 'yml', 'toml', 'r', 'perl', 'dockerfile', 'makefile', 'ini', 'conf', 'powershell', 'ps1']);
const DASH_COMMENTS = new Set(['sql', 'lua', 'haskell', 'hs']);
const NO_COMMENTS = new Set(['json', 'text', 'txt', 'plain', 'csv', 'markdown', 'md']);

const KEYWORDS = {
  python: `False None True and as assert async await break class continue def del elif else except
    finally for from global if import in is lambda nonlocal not or pass raise return try while with
    yield match case self print len range`,
  js: `break case catch class const continue debugger default delete do else export extends false
    finally for function if import in instanceof let new null return super switch this throw true
    try typeof undefined var void while with yield async await of static get set`,
  c: `auto break case char const continue default do double else enum extern float for goto if int
    long register return short signed sizeof static struct switch typedef union unsigned void
    volatile while bool true false nullptr class public private protected virtual template typename
    namespace using new delete this throw try catch include define`,
  java: `abstract boolean break byte case catch char class const continue default do double else enum
    extends final finally float for if implements import instanceof int interface long native new
    null package private protected public return short static super switch this throw throws try
    void volatile while true false var val fun override`,
  go: `break case chan const continue default defer else fallthrough for func go goto if import
    interface map package range return select struct switch type var nil true false string int
    error`,
  rust: `as async await break const continue crate dyn else enum extern false fn for if impl in let
    loop match mod move mut pub ref return self Self static struct super trait true type unsafe use
    where while Some None Ok Err`,
  sh: `if then else elif fi case esac for while until do done in function return local export echo
    exit set unset source`,
  sql: `select from where insert into values update set delete create table drop alter index join
    left right inner outer on group by order having limit offset and or not null is in as distinct
    union all primary key foreign references`,
};

const ALIASES = {
  py: 'python', python: 'python', javascript: 'js', js: 'js', ts: 'js', typescript: 'js', jsx: 'js',
  tsx: 'js', json: 'js', c: 'c', h: 'c', cpp: 'c', 'c++': 'c', cc: 'c', cs: 'java', csharp: 'java',
  java: 'java', kotlin: 'java', kt: 'java', scala: 'java', swift: 'java', go: 'go', golang: 'go',
  rust: 'rust', rs: 'rust', sh: 'sh', bash: 'sh', shell: 'sh', zsh: 'sh', console: 'sh', sql: 'sql',
};

const keywordSets = new Map();

function keywordsFor(language) {
  const family = ALIASES[language] || null;
  const key = family || '*';
  if (!keywordSets.has(key)) {
    const words = family ? KEYWORDS[family] : Object.values(KEYWORDS).join(' ');
    keywordSets.set(key, new Set(words.split(/\s+/).filter(Boolean)));
  }
  return keywordSets.get(key);
}

function tokenPattern(language) {
  const parts = [];
  if (HASH_COMMENTS.has(language)) parts.push('#[^\\n]*');
  else if (DASH_COMMENTS.has(language)) parts.push('--[^\\n]*');
  else if (!NO_COMMENTS.has(language)) parts.push('\\/\\/[^\\n]*', '\\/\\*[\\s\\S]*?(?:\\*\\/|$)');
  if (!language) parts.push('#[^\\n]*');
  if (language === 'python' || language === 'py') parts.push('"""[\\s\\S]*?(?:"""|$)', "'''[\\s\\S]*?(?:'''|$)");
  parts.push('"(?:[^"\\\\\\n]|\\\\.)*"?', "'(?:[^'\\\\\\n]|\\\\.)*'?", '`(?:[^`\\\\]|\\\\.)*`?');
  parts.push('\\b(?:0x[0-9a-fA-F]+|\\d[\\d_]*(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)\\b');
  parts.push('[A-Za-z_$][\\w$]*');
  return new RegExp(parts.join('|'), 'g');
}

function span(kind, text) {
  const element = document.createElement('span');
  element.className = `tok-${kind}`;
  element.textContent = text;
  return element;
}

export function highlight(code, language = '') {
  const fragment = document.createDocumentFragment();
  const lang = (language || '').toLowerCase();
  if (NO_COMMENTS.has(lang) && lang !== 'json') {
    fragment.append(document.createTextNode(code));
    return fragment;
  }
  const keywords = keywordsFor(lang);
  const caseless = ALIASES[lang] === 'sql';
  const pattern = tokenPattern(lang);
  let last = 0;
  let match;
  while ((match = pattern.exec(code))) {
    const token = match[0];
    if (!token) {
      pattern.lastIndex += 1;
      continue;
    }
    if (match.index > last) fragment.append(document.createTextNode(code.slice(last, match.index)));
    const first = token[0];
    if (token.startsWith('//') || token.startsWith('/*') || first === '#' || token.startsWith('--')) {
      fragment.append(span('comment', token));
    } else if (first === '"' || first === "'" || first === '`') {
      fragment.append(span('string', token));
    } else if (/[0-9]/.test(first)) {
      fragment.append(span('number', token));
    } else if (keywords.has(caseless ? token.toLowerCase() : token)) {
      fragment.append(span('keyword', token));
    } else if (code[match.index + token.length] === '(') {
      fragment.append(span('function', token));
    } else {
      fragment.append(document.createTextNode(token));
    }
    last = match.index + token.length;
  }
  if (last < code.length) fragment.append(document.createTextNode(code.slice(last)));
  return fragment;
}
