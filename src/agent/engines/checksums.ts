// Reading a release's SHA256SUMS file: one `<hex digest>  <file name>` line
// per release file, as written by `sha256sum` (a `*` before the name marks
// binary mode and means the same).

/** The expected lowercase hex SHA-256 of `fileName`, or undefined if the file is not listed. */
export function expectedSha256(sums: string, fileName: string): string | undefined {
  for (const line of sums.split(/\r?\n/)) {
    const match = /^([0-9a-fA-F]{64})\s+\*?(.+)$/.exec(line.trim());
    if (match?.[2] === fileName) return match[1]?.toLowerCase();
  }
  return undefined;
}
