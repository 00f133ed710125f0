// The repository's documentation stands on its own: nothing points outside
// the repository (a link or path leaving it, a document that is not in it),
// every relative Markdown link reaches a file (and a heading) that exists,
// README.md lists every doc under docs/, and the docs speak of Outpost, not
// of the history of its making (work sessions, issue numbers, the name of a
// document outside the repository).
//
// The files are those git tracks or would track (`git ls-files --cached
// --others --exclude-standard`), so a new doc is checked before it is
// committed; package-lock.json and binary files are left out.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(fileURLToPath(new URL('../../', import.meta.url)));

interface TextFile {
  /** Path relative to the repository root, with `/`. */
  readonly name: string;
  readonly lines: readonly string[];
}

function repositoryFiles(): string[] | string {
  try {
    const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return [...new Set(listed.split('\0').filter((name) => name !== ''))];
  } catch (error) {
    return `not a git checkout (${(error as Error).message.split('\n')[0]})`;
  }
}

const listed = repositoryFiles();
const skip = typeof listed === 'string' ? listed : false;

function readTextFiles(names: readonly string[]): TextFile[] {
  const files: TextFile[] = [];
  for (const name of names) {
    if (name === 'package-lock.json' || name.endsWith('/package-lock.json')) continue;
    const absolute = path.join(root, name);
    // Listed but deleted in the working tree.
    if (!existsSync(absolute)) continue;
    const bytes = readFileSync(absolute);
    if (bytes.subarray(0, 8000).includes(0)) continue;
    files.push({ name, lines: bytes.toString('utf8').split('\n') });
  }
  return files;
}

const files = typeof listed === 'string' ? [] : readTextFiles(listed);
const markdown = files.filter((file) => file.name.endsWith('.md'));
const userDocs = markdown.filter((file) => file.name === 'README.md' || file.name.startsWith('docs/'));

/** Fails with one line per problem, each naming the file and line. */
function assertNone(problems: readonly string[], what: string): void {
  if (problems.length > 0) assert.fail(`${what}:\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
}

/** Where a path relative to `file` lands, relative to the repository root ('../…' when outside). */
function resolveFrom(file: string, target: string): string {
  return path.relative(root, path.resolve(root, path.dirname(file), target)).split(path.sep).join('/');
}

function leavesRepository(resolved: string): boolean {
  return resolved === '..' || resolved.startsWith('../') || path.isAbsolute(resolved);
}

interface Link {
  readonly line: number;
  readonly target: string;
}

/** Inline links `[text](target)` and reference definitions `[label]: target`, outside code spans. */
function linksIn(lines: readonly string[], options: { skipCodeBlocks: boolean }): Link[] {
  const links: Link[] = [];
  let inFence = false;
  lines.forEach((text, index) => {
    if (options.skipCodeBlocks && /^\s*(```|~~~)/.test(text)) {
      inFence = !inFence;
      return;
    }
    if (inFence) return;
    const prose = options.skipCodeBlocks ? text.replace(/`[^`]*`/g, '') : text;
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ line: index + 1, target: match[1] ?? '' });
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(prose);
    if (definition?.[1]) links.push({ line: index + 1, target: definition[1] });
  });
  return links;
}

function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//');
}

function withoutUrls(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, '');
}

/** A link target with its %-escapes decoded (kept as written when they are malformed). */
function decoded(target: string): string {
  try {
    return decodeURIComponent(target);
  } catch {
    return target;
  }
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slugOf(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}_\- ]/gu, '').replace(/ /g, '-');
}

function anchorsOf(file: TextFile): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const text of file.lines) {
    if (/^\s*(```|~~~)/.test(text)) inFence = !inFence;
    if (inFence) continue;
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (heading?.[1] === undefined) continue;
    const slug = slugOf(heading[1]);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

const commentLine = /^\s*(\/\/|\/\*|\*|#)/;

test('no file links to, or names a path or document, outside the repository', { skip }, () => {
  const problems: string[] = [];
  const documents = new Set(markdown.map((file) => path.posix.basename(file.name)));
  for (const file of files) {
    const isMarkdown = file.name.endsWith('.md');
    for (const link of linksIn(file.lines, { skipCodeBlocks: isMarkdown })) {
      if (isExternal(link.target) || link.target.startsWith('#') || link.target.startsWith('/')) continue;
      const resolved = resolveFrom(file.name, decoded(link.target.split('#')[0] ?? ''));
      if (leavesRepository(resolved)) problems.push(`${file.name}:${link.line}: the link ${link.target} leaves the repository`);
    }
    const isTest = file.name.endsWith('.test.ts');
    file.lines.forEach((text, index) => {
      const where = `${file.name}:${index + 1}`;
      for (const match of text.matchAll(/(?<![\w.])(?:\.\.\/)+[\w.-]+/g)) {
        if (!leavesRepository(resolveFrom(file.name, match[0]))) continue;
        // Tests feed path traversal attempts (`../../etc`) to the code on
        // purpose; a path to the shared/ folder beside the repository is never one.
        if (isTest && !match[0].endsWith('/shared')) continue;
        problems.push(`${where}: the path ${match[0]} leaves the repository`);
      }
      // Documents named in prose and comments must be in the repository.
      if (isMarkdown || commentLine.test(text)) {
        for (const match of withoutUrls(text).matchAll(/[\w./-]*?([\w-]+\.md)\b/g)) {
          const document = match[1] ?? '';
          if (!documents.has(document)) problems.push(`${where}: ${match[0]} names a document that is not in the repository`);
        }
      }
    });
  }
  assertNone(problems, 'references that leave the repository');
});

test('every relative link in a Markdown file reaches a file, and a heading, that exist', { skip }, () => {
  const problems: string[] = [];
  const anchors = new Map(markdown.map((file) => [file.name, anchorsOf(file)]));
  for (const file of markdown) {
    for (const link of linksIn(file.lines, { skipCodeBlocks: true })) {
      if (isExternal(link.target)) continue;
      const [target = '', fragment] = link.target.split('#');
      const resolved = target === '' ? file.name : resolveFrom(file.name, decoded(target));
      const where = `${file.name}:${link.line}`;
      if (target.startsWith('/')) {
        problems.push(`${where}: ${link.target} is absolute; link relative to ${file.name}`);
        continue;
      }
      if (leavesRepository(resolved)) continue; // reported by the test above
      if (!existsSync(path.join(root, resolved))) {
        problems.push(`${where}: ${link.target} points at ${resolved}, which does not exist`);
        continue;
      }
      const headings = anchors.get(resolved);
      if (fragment !== undefined && fragment !== '' && headings !== undefined && !headings.has(decoded(fragment).toLowerCase())) {
        problems.push(`${where}: ${link.target}: ${resolved} has no heading #${fragment}`);
      }
    }
  }
  assertNone(problems, 'broken links');
});

test('README.md lists every doc under docs/, and only docs that exist', { skip }, () => {
  const readme = markdown.find((file) => file.name === 'README.md');
  assert.ok(readme, 'README.md is missing');
  const listedDocs = new Map<string, number>();
  for (const link of linksIn(readme.lines, { skipCodeBlocks: true })) {
    const target = link.target.split('#')[0] ?? '';
    if (/^docs\/[^/]+\.md$/.test(target) && !listedDocs.has(target)) listedDocs.set(target, link.line);
  }
  const onDisk = readdirSync(path.join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`);
  const problems = [
    ...onDisk.filter((doc) => !listedDocs.has(doc)).map((doc) => `README.md: ${doc} is not listed (add a line for it under "Documentation")`),
    ...[...listedDocs].filter(([doc]) => !onDisk.includes(doc)).map(([doc, line]) => `README.md:${line}: ${doc} is listed but does not exist`),
  ];
  assertNone(problems, 'README.md and docs/ disagree');
});

/** Words that belong to the history of the project's making, not to its documentation. */
const historyWords: readonly { pattern: RegExp; why: string }[] = [
  { pattern: /\bseed(?:s|'s|ed)?\b/i, why: '"seed": name what it is (the Scalr agent\'s installation guide, its recipes, Scalr\'s names)' },
  { pattern: /design\.md/i, why: 'design.md is not in the repository' },
  // The agent protocol's session token is a real thing; a work session is not.
  { pattern: /\bsessions?\b(?!\s*[-_]?\s*tokens?\b)/i, why: '"session" as work history: date the result instead (the session token is fine)' },
  { pattern: /\bissues?\s*#?\s*\d+/i, why: 'an issue number: say what it is about' },
  { pattern: /\b(?:fault suite )?item\s+\d+\b/i, why: 'numbering from a document outside the repository' },
  { pattern: /\btest\s+\d+\b/i, why: 'numbering from a document outside the repository: name the test file' },
];

test('README.md and docs/ speak of Outpost, not of the history of its making', { skip }, () => {
  const problems: string[] = [];
  for (const file of userDocs) {
    // The whole text at once: a line break may split a phrase ("session\ntoken").
    const text = file.lines.join('\n');
    for (const { pattern, why } of historyWords) {
      for (const match of text.matchAll(new RegExp(pattern.source, `${pattern.flags}g`))) {
        const line = text.slice(0, match.index).split('\n').length;
        problems.push(`${file.name}:${line}: "${match[0].replace(/\s+/g, ' ')}": ${why}`);
      }
    }
  }
  assertNone(problems, 'work history in the user docs');
});

test('the checks find what they look for', () => {
  assert.equal(slugOf('Agent (`outpost agent run`)'), 'agent-outpost-agent-run');
  assert.equal(slugOf('Provider cache (bench/provider-cache.ts)'), 'provider-cache-benchprovider-cachets');
  assert.equal(slugOf("A plan's working directory, kept for its apply"), 'a-plans-working-directory-kept-for-its-apply');
  // Spelled in pieces, so that this file does not trip the checks it tests.
  const outside = ['..', 'shared', 'notes.md'].join('/');
  assert.deepEqual(linksIn([`see [notes](${outside}) and \`[x](y)\``, '```', '[z](w)', '```'], { skipCodeBlocks: true }), [{ line: 1, target: outside }]);
  assert.ok(leavesRepository(resolveFrom('README.md', outside)));
  assert.ok(!leavesRepository(resolveFrom('test/e2e/x.test.ts', ['..', 'support'].join('/'))));
  const flagged = (text: string) => historyWords.some(({ pattern }) => pattern.test(text));
  for (const text of [['the', 'seed\'s recipes'].join(' '), 'this session', 'the second session\'s numbers', 'see issue #12', 'fault suite item 4', 'test 7 starts']) {
    assert.ok(flagged(text), text);
  }
  for (const text of ['a session token (ops_…)', 'session_token', 'agent session token', 'session tokens are hashed', 'seedling-free prose']) {
    assert.ok(!flagged(text), text);
  }
});
