// Downloading one engine release into the cache: fetch SHA256SUMS, stream the
// zip to .partial while hashing it, verify, extract the binary into a staging
// directory and publish that directory with one rename().
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Engine } from '../../protocol/statuses.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { partialDir, partialPath, publishEntry } from './cache-layout.ts';
import { expectedSha256 } from './checksums.ts';
import { downloadToFile, fetchText, type DownloadContext } from './release-download.ts';
import { engineBinaryName, engineDisplayName, redactUrl, releaseFiles, type Platform } from './release-files.ts';
import { extractBinary } from './release-zip.ts';

export interface InstallRequest {
  dir: string;
  engine: Engine;
  version: string;
  platform: Platform;
  mirror: string | undefined;
  download: DownloadContext;
  logger: Logger;
  note: (line: string) => void;
}

/**
 * Installs the release and returns the cached binary's path. Throws
 * `engine_checksum_mismatch` (an OutpostError) when verification fails;
 * any other error means the release could not be fetched or installed.
 */
export async function installRelease(request: InstallRequest): Promise<string> {
  const { dir, engine, version, logger } = request;
  const files = releaseFiles(engine, version, request.platform, request.mirror);
  const name = `${engineDisplayName(engine)} ${version}`;
  const started = Date.now();
  request.note(`Downloading ${name} from ${redactUrl(files.zipUrl)}`);

  // The sums first: a release without a line for our zip is refused before 90 MB are fetched.
  const sums = await fetchText(files.sumsUrl, request.download);
  const expected = expectedSha256(sums, files.zipName);
  if (expected === undefined) {
    throw new OutpostError(
      'engine_checksum_mismatch',
      `${files.sumsName} at ${redactUrl(files.sumsUrl)} has no checksum for ${files.zipName}, so the download cannot be verified. ` +
        'No other binary was used: check the mirror or the release.',
      { url: redactUrl(files.sumsUrl), file: files.zipName },
    );
  }

  await mkdir(partialDir(dir), { recursive: true });
  const zipFile = partialPath(dir, engine, version, '.zip');
  const staging = partialPath(dir, engine, version);
  try {
    const actual = await downloadToFile(files.zipUrl, zipFile, request.download);
    if (actual !== expected) {
      throw new OutpostError(
        'engine_checksum_mismatch',
        `${files.zipName} downloaded from ${redactUrl(files.zipUrl)} has SHA-256 ${actual}, but ${files.sumsName} lists ${expected}. ` +
          'The file was deleted and no other binary was used: it may be corrupted or tampered with.',
        { url: redactUrl(files.zipUrl), expected, actual },
      );
    }
    await mkdir(staging);
    await extractBinary(zipFile, engineBinaryName(engine), path.join(staging, engineBinaryName(engine)));
    const binary = await publishEntry(dir, engine, version, staging);
    logger.info({ engine, version, url: redactUrl(files.zipUrl), ms: Date.now() - started }, 'engine release installed');
    request.note(`Installed ${name} (SHA-256 verified against ${files.sumsName})`);
    return binary;
  } finally {
    await rm(zipFile, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}
