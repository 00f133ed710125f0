// Starting a run from a local directory: pack it, create a configuration
// version, upload the archive, then create the run. Shared by `outpost run`
// and `outpost quickstart`.
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutpostApi } from './api-client.ts';
import { ApiError } from './api-error.ts';
import type { ConfigurationVersion, Run } from './api-resources.ts';
import { packConfiguration } from './configuration-archive.ts';

export interface UploadedConfiguration {
  readonly configurationVersion: ConfigurationVersion;
  /** Size of the uploaded .tar.gz in bytes. */
  readonly archiveBytes: number;
}

// The server marks a version `uploaded` as it stores the PUT body, so one
// read normally suffices; the short wait covers a server that finishes
// processing just after answering.
const uploadSettleAttempts = 50;
const uploadSettleIntervalMs = 100;

export async function uploadConfiguration(api: OutpostApi, workspaceId: string, directory: string): Promise<UploadedConfiguration> {
  const { archive } = await packConfiguration(directory);
  const created = await api.createConfigurationVersion(workspaceId);
  const uploadUrl = created.attributes['upload-url'];
  if (typeof uploadUrl !== 'string' || uploadUrl === '') {
    throw new ApiError({ status: 502, code: 'internal', detail: `configuration version ${created.id} has no upload-url` });
  }
  await api.uploadConfiguration(uploadUrl, archive);
  let version = await api.getConfigurationVersion(created.id);
  for (let attempt = 0; version.attributes.status === 'pending' && attempt < uploadSettleAttempts; attempt += 1) {
    await sleep(uploadSettleIntervalMs);
    version = await api.getConfigurationVersion(created.id);
  }
  if (version.attributes.status !== 'uploaded') {
    const reason = version.attributes['error-message'] ?? `its status is ${version.attributes.status}`;
    throw new ApiError({ status: 422, code: 'archive_invalid', detail: `configuration version ${version.id} was not accepted: ${reason}` });
  }
  return { configurationVersion: version, archiveBytes: archive.byteLength };
}

export interface StartRunOptions {
  readonly workspaceId: string;
  /** The configuration directory to pack and upload. */
  readonly directory: string;
  readonly message?: string;
  readonly isDestroy?: boolean;
  readonly planOnly?: boolean;
  /** Unset: the workspace's auto-apply setting decides. */
  readonly autoApply?: boolean;
}

export interface StartedRun {
  readonly run: Run;
  readonly upload: UploadedConfiguration;
}

export async function startRun(api: OutpostApi, options: StartRunOptions): Promise<StartedRun> {
  const upload = await uploadConfiguration(api, options.workspaceId, options.directory);
  const run = await api.createRun({
    workspaceId: options.workspaceId,
    configurationVersionId: upload.configurationVersion.id,
    message: options.message ?? 'Queued by the outpost CLI',
    isDestroy: options.isDestroy,
    planOnly: options.planOnly,
    autoApply: options.autoApply,
  });
  return { run, upload };
}
