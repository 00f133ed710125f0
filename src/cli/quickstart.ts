// `outpost quickstart` (what `npm start` runs).
export async function runQuickstartCommand(): Promise<number> {
  throw new Error('not implemented yet');
}
