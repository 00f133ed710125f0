// One logger setup for every command: JSON lines in production (one object
// per line, for log shippers) and readable lines on a terminal. Token-like
// fields are redacted so a careless log call cannot leak a secret.
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type pretty from 'pino-pretty';

// pino-pretty is loaded only for text output: JSON lines (every process in a
// container or under a supervisor) never need it. It is CommonJS, so a
// synchronous require keeps createLogger() synchronous.
const require = createRequire(import.meta.url);

export type LogFormat = 'auto' | 'json' | 'text';

export function createLogger(options: { format: LogFormat; level: string; name: string; stream?: NodeJS.WritableStream }): Logger {
  const destination = options.stream ?? process.stderr;
  const text = options.format === 'text' || (options.format === 'auto' && (destination as { isTTY?: boolean }).isTTY === true);
  const base = {
    name: options.name,
    level: options.level,
    redact: {
      paths: ['token', '*.token', 'session_token', 'job_token', 'password', 'headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  };
  if (text) {
    const prettyStream = require('pino-pretty') as typeof pretty;
    return pino(base, prettyStream({ destination, colorize: (destination as { isTTY?: boolean }).isTTY === true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
  }
  return pino(base, destination);
}
