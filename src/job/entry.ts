// Starts the job operation as a process of its own, for tests that need one
// (the CLI's `outpost job` calls runJobCommand the same way).
import { runJobCommand } from './main.ts';

process.exitCode = await runJobCommand();
