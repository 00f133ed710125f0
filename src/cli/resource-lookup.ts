// Finding resources the way users name them. People type names; the API
// addresses most resources by id. A pool may be given either way (an
// `apool-` id or its name), so may a VCS provider (a `vcs-` id or its name);
// a workspace by name (or a `ws-` id).
import type { OutpostApi } from './api-client.ts';
import { ApiError } from './api-error.ts';
import type { Pool, Variable, VariableCategory, VcsProvider, Workspace } from './api-resources.ts';

// `not_found` (no such resource), not `route_not_found` (no such endpoint:
// probably not an Outpost server), which must surface unchanged.
function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.code === 'not_found';
}

export async function findPool(api: OutpostApi, org: string, nameOrId: string): Promise<Pool> {
  if (nameOrId.startsWith('apool-')) {
    try {
      return await api.getPool(nameOrId);
    } catch (error) {
      // Not an id after all: a pool may be named like one.
      if (!isNotFound(error)) throw error;
    }
  }
  const pool = (await api.listPools(org)).find((candidate) => candidate.attributes.name === nameOrId);
  if (pool === undefined) {
    throw new ApiError({ status: 404, code: 'not_found', detail: `no agent pool named "${nameOrId}" in organization "${org}"` });
  }
  return pool;
}

export async function findVcsProvider(api: OutpostApi, org: string, nameOrId: string): Promise<VcsProvider> {
  if (nameOrId.startsWith('vcs-')) {
    try {
      return await api.getVcsProvider(nameOrId);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  const provider = (await api.listVcsProviders(org)).find((candidate) => candidate.attributes.name === nameOrId);
  if (provider === undefined) {
    throw new ApiError({ status: 404, code: 'not_found', detail: `no VCS provider named "${nameOrId}" in organization "${org}"` });
  }
  return provider;
}

export async function findWorkspace(api: OutpostApi, org: string, nameOrId: string): Promise<Workspace> {
  if (nameOrId.startsWith('ws-')) {
    try {
      return await api.getWorkspace(nameOrId);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  try {
    return await api.getWorkspaceByName(org, nameOrId);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    throw new ApiError({ status: 404, code: 'not_found', detail: `no workspace named "${nameOrId}" in organization "${org}"` });
  }
}

/** A variable is identified by its key and category: `FOO` may exist both as a Terraform and an env variable. */
export async function findVariable(api: OutpostApi, workspaceId: string, key: string, category: VariableCategory): Promise<Variable | undefined> {
  const variables = await api.listVariables(workspaceId);
  return variables.find((variable) => variable.attributes.key === key && variable.attributes.category === category);
}
