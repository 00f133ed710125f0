// `outpost server`: the control plane.
export async function runServerCommand(): Promise<number> {
  throw new Error('not implemented yet');
}
