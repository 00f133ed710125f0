// `outpost job`: the job operation. Runs inside the driver's sandbox.
export async function runJobCommand(): Promise<number> {
  throw new Error('not implemented yet');
}
