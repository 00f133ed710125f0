// The server's own TLS: the certificate and key files are read at start and
// checked again every OUTPOST_TLS_RELOAD_INTERVAL, so a renewed certificate
// (cert-manager rewriting a Secret, certbot's renewal) is served without a
// restart. Files are compared by content, not by mtime: a Kubernetes Secret
// volume swaps a symlink, and copies keep the old mtime. A pair that does not
// load (a half-written file, a key of another certificate) is logged and the
// previous pair stays in service.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Identifies the pair's contents, to notice a change. */
  readonly digest: string;
}

/** Reads and checks a certificate and its key; throws a sentence naming the files when they do not make a TLS context. */
export async function loadTlsPair(files: TlsFiles): Promise<TlsPair> {
  const [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`the TLS certificate or key cannot be read (${error.code ?? error.message}): OUTPOST_TLS_CERT=${files.certFile}, OUTPOST_TLS_KEY=${files.keyFile}`);
  });
  try {
    // Also checks that the key belongs to the certificate.
    createSecureContext({ cert, key });
  } catch (error) {
    throw new Error(`the TLS certificate and key do not load together (${(error as Error).message}): OUTPOST_TLS_CERT=${files.certFile}, OUTPOST_TLS_KEY=${files.keyFile}`);
  }
  return { cert, key, digest: createHash('sha256').update(cert).update('\0').update(key).digest('hex') };
}

/** Options for an HTTPS server serving the pair. */
export function httpsOptions(pair: TlsPair): SecureContextOptions {
  return { cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' };
}

/** Re-reads the files every interval and puts a changed, valid pair in service; returns a stop function. */
export function watchTlsFiles(server: Server, files: TlsFiles, initial: TlsPair, intervalMs: number, logger: Logger): () => void {
  let current = initial.digest;
  let lastProblem: string | undefined;
  let checking = false;
  const check = async (): Promise<void> => {
    if (checking) return;
    checking = true;
    try {
      const pair = await loadTlsPair(files);
      lastProblem = undefined;
      if (pair.digest === current) return;
      server.setSecureContext(httpsOptions(pair));
      current = pair.digest;
      logger.info({ certFile: files.certFile }, 'TLS certificate reloaded');
    } catch (error) {
      const problem = (error as Error).message;
      // Logged once per problem, not every interval while it lasts.
      if (problem !== lastProblem) logger.warn({ problem }, 'TLS certificate not reloaded; the previous one stays in service');
      lastProblem = problem;
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
