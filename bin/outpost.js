#!/usr/bin/env node
// Entry point for the installed `outpost` command. The sources are TypeScript
// run by Node's built-in type stripping (Node 24), so there is no build step.
import '../src/cli/main.ts';
