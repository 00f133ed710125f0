// Whether a push should start a run for a workspace: did it change a file
// the workspace cares about? Unknown changes always run, since skipping a
// run silently is worse than an unneeded plan.
import path from 'node:path';

export interface TriggerRules {
  /** The workspace's directory in the repository; '' (or '.') is the root. */
  workingDirectory: string;
  /** Glob patterns relative to the repository root; empty = any change under the working directory ('' = anywhere). */
  patterns: readonly string[];
}

export interface TriggerVerdict {
  runs: boolean;
  reason: string;
}

const maxPatternLength = 256;
const globCharacters = /[*?[\]{}!]/;
const maxFilesNamed = 3;

/** `./a/b/` → `a/b`; '' for the root. */
function normalizedDirectory(directory: string): string {
  return directory.replace(/^(\.\/)+/, '').replace(/\/+$/, '').replace(/^\.$/, '');
}

function isUnder(file: string, directory: string): boolean {
  return directory === '' || file === directory || file.startsWith(`${directory}/`);
}

/**
 * Wildcards match names starting with a dot here, unlike in a shell: a
 * change to `.terraform.lock.hcl` or under `.github/` must match `infra/*`
 * or `**`. Each segment's leading dot becomes a private-use character in
 * both the path and the pattern, so a pattern's literal dots still match.
 */
function withoutLeadingDots(value: string): string {
  return value.split('/').map((segment) => (segment.startsWith('.') ? `\uE000${segment.slice(1)}` : segment)).join('/');
}

function matches(file: string, pattern: string): boolean {
  const normalized = pattern.replace(/^(\.\/)+/, '');
  // A directory named without wildcards (`modules`, `modules/`) means everything under it.
  if (!globCharacters.test(normalized)) return isUnder(file, normalized.replace(/\/+$/, ''));
  const glob = normalized.endsWith('/') ? `${normalized}**` : normalized;
  return path.posix.matchesGlob(withoutLeadingDots(file), withoutLeadingDots(glob));
}

function named(files: readonly string[]): string {
  const shown = files.slice(0, maxFilesNamed).join(', ');
  return files.length > maxFilesNamed ? `${shown} and ${files.length - maxFilesNamed} more` : shown;
}

export function triggerMatch(changedFiles: readonly string[] | null, rules: TriggerRules): TriggerVerdict {
  if (changedFiles === null) return { runs: true, reason: 'the files this push changed are not known, so the run is not skipped' };
  if (changedFiles.length === 0) return { runs: false, reason: 'the push changed no files' };
  if (rules.patterns.length > 0) {
    const matched = changedFiles.filter((file) => rules.patterns.some((pattern) => matches(file, pattern)));
    return matched.length > 0
      ? { runs: true, reason: `${named(matched)} matched the trigger patterns` }
      : { runs: false, reason: `no changed file matched the trigger patterns (${rules.patterns.join(', ')})` };
  }
  const directory = normalizedDirectory(rules.workingDirectory);
  if (directory === '') return { runs: true, reason: `${named(changedFiles)} changed in the repository` };
  const under = changedFiles.filter((file) => isUnder(file, directory));
  return under.length > 0
    ? { runs: true, reason: `${named(under)} changed under the working directory ${directory}` }
    : { runs: false, reason: `no changed file is under the working directory ${directory}` };
}

/** A sentence saying what is wrong with a trigger pattern, or undefined when it is fine. */
export function validateTriggerPattern(pattern: string): string | undefined {
  if (pattern.trim() === '') return 'a trigger pattern may not be empty';
  if (pattern.length > maxPatternLength) return `a trigger pattern may be at most ${maxPatternLength} characters`;
  if (pattern.startsWith('/') || /^[A-Za-z]:/.test(pattern)) return `trigger pattern ${pattern} is absolute: patterns are relative to the repository root`;
  if (pattern.includes('\\')) return `trigger pattern ${pattern} contains "\\": separate directories with "/"`;
  if (pattern.split('/').includes('..')) return `trigger pattern ${pattern} contains "..": patterns stay inside the repository`;
  if (/\p{Cc}/u.test(pattern)) return `trigger pattern ${JSON.stringify(pattern)} contains a control character`;
  return undefined;
}
