// The agent's version, as it registers with the control plane (and as
// `outpost agent list` shows it): the package's.
export { productVersion as agentVersion } from '../protocol/product-version.ts';
