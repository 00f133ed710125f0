// What clients send to the API v2 (/api/v2): the attributes of the request
// documents, once, for the server that validates them and the CLI that
// builds them. Validation failures answer 422 `validation_failed` with the
// path and the message of each problem, so the messages here are what a
// user reads.
import { z } from 'zod';
import { engines, executionModes, poolKinds } from './statuses.ts';
import { variableCategories } from './api-resources.ts';
import { vcsRepoInput } from './vcs-api.ts';

/** JSON:API's media type, which TFE's API and its clients use for every document. */
export const jsonApiMediaType = 'application/vnd.api+json';

export const engineVersion = z.string().regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'expected a version such as 1.10.10');

const workingDirectory = z
  .string()
  .max(512)
  .refine((value) => !value.startsWith('/') && !value.split('/').includes('..'), 'must be a relative path inside the configuration');

/** A workspace tag, as TFE allows them. */
export const workspaceTag = z.string().min(1).max(255).regex(/^[A-Za-z0-9][A-Za-z0-9:_-]*$/, 'use letters, digits, :, - and _, starting with a letter or digit');

/** A new workspace; the same attributes, all optional, update one. */
export const workspaceInput = z.object({
  name: z.string().min(1).max(90).regex(/^[A-Za-z0-9_-]+$/, 'use letters, digits, - and _'),
  'auto-apply': z.boolean().optional(),
  'working-directory': workingDirectory.optional(),
  engine: z.enum(engines).optional(),
  /** The engine version (TFE's name for it, whichever engine is used). */
  'terraform-version': engineVersion.optional(),
  /** null removes the workspace from its pool. */
  'agent-pool-id': z.string().nullable().optional(),
  'execution-mode': z.enum(executionModes).optional(),
  description: z.string().max(2000).nullable().optional(),
  /** Replaces the workspace's tags (TFE's `tag-names`); the cloud block of the tofu CLI selects workspaces by them. */
  'tag-names': z.array(workspaceTag).max(100).optional(),
  /** Links the workspace to a repository (TFE's attribute); null unlinks it. */
  'vcs-repo': vcsRepoInput.nullable().optional(),
  /** Globs of paths (from the repository root) whose changes start runs; empty: any change under the working directory. */
  'trigger-patterns': z.array(z.string().max(256)).max(100).optional(),
  /** Pull requests get speculative plans (default true). */
  'speculative-enabled': z.boolean().optional(),
});
export const workspaceUpdate = workspaceInput.partial();
export type WorkspaceInput = z.input<typeof workspaceUpdate>;

const variableKey = z.string().min(1).max(128).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid identifier');
const variableValue = z.string().max(256 * 1024);
const variableDescription = z.string().max(512);

export const variableInput = z.object({
  key: variableKey,
  value: variableValue.default(''),
  category: z.enum(variableCategories),
  hcl: z.boolean().default(false),
  sensitive: z.boolean().default(false),
  description: variableDescription.default(''),
});
/** The category of a variable cannot change: delete it and create another. */
export const variableUpdate = z.object({
  key: variableKey.optional(),
  value: variableValue.optional(),
  hcl: z.boolean().optional(),
  sensitive: z.boolean().optional(),
  description: variableDescription.optional(),
});
export type VariableInput = z.input<typeof variableInput> | z.input<typeof variableUpdate>;

/** A resource address as the engine takes it for -target and -replace; it starts no option and holds no line break. */
const resourceAddress = z.string().min(1).max(1024).regex(/^[^-\s][^\r\n]*$/, 'expected a resource address such as aws_instance.web or module.app');

export const runInput = z.object({
  message: z.string().max(2000).optional(),
  'is-destroy': z.boolean().optional(),
  'plan-only': z.boolean().optional(),
  /** Unset: the workspace's auto-apply setting decides. */
  'auto-apply': z.boolean().optional(),
  /** false: plan without refreshing (`-refresh=false`). */
  refresh: z.boolean().optional(),
  /** Only refresh the state (`-refresh-only`). */
  'refresh-only': z.boolean().optional(),
  /** Resource addresses to limit the run to (`-target`). */
  'target-addrs': z.array(resourceAddress).max(1000).nullable().optional(),
  /** Resource addresses to replace (`-replace`). */
  'replace-addrs': z.array(resourceAddress).max(1000).nullable().optional(),
  /** Values for this run only, overriding the workspace's terraform variables: each value is HCL. */
  variables: z.array(z.object({ key: z.string().min(1).max(128).regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'must be a valid identifier'), value: z.string().max(256 * 1024) })).max(500).nullable().optional(),
  /** Accepted for TFE's clients; an apply without changes is always allowed. */
  'allow-empty-apply': z.boolean().optional(),
  /** A saved plan (`tofu plan -out` with a cloud block) is not supported yet: only false is accepted, rather than a run that would wait, holding the workspace, for an apply nobody asks for. */
  'save-plan': z.literal(false, { error: 'saved plans (tofu plan -out with a cloud block) are not supported yet; run tofu apply instead' }).optional(),
  /** Accepted for TFE's clients (`plan -generate-config-out`); see docs/api.md. */
  'allow-config-generation': z.boolean().optional(),
  /** Accepted for TFE's clients and ignored: the workspace's engine version runs. */
  'terraform-version': z.string().max(64).optional(),
});

export const poolInput = z.object({
  name: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, -, _ and .'),
  /** `vcs`: its agents relay version control work instead of running jobs (docs/vcs.md). */
  kind: z.enum(poolKinds).default('runner'),
});

export const poolTokenInput = z.object({ description: z.string().max(256).default('') });

/** An HTTP header name (RFC 9110 token). */
const headerName = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;

/** A pool's webhook. Every attribute is optional on update; `url` is required the first time. */
export const poolWebhookInput = z.object({
  url: z
    .string()
    .max(2048)
    .refine((value) => URL.canParse(value) && ['http:', 'https:'].includes(new URL(value).protocol), 'expected an http:// or https:// URL')
    .optional(),
  /** Replaces every custom header; the values are sealed at rest and never shown again. */
  headers: z
    .record(z.string(), z.string().max(8192).regex(/^[^\r\n]*$/, 'a header value is one line'))
    .refine((headers) => Object.keys(headers).every((name) => headerName.test(name)), 'a header name is 1 to 128 letters, digits or !#$%&\'*+.^_`|~-')
    .optional(),
  enabled: z.boolean().optional(),
  'deliveries-per-minute': z.number().int().min(1).max(6000).optional(),
  'claim-timeout-seconds': z.number().int().min(5).max(86_400).optional(),
});

export type PoolWebhookInput = z.infer<typeof poolWebhookInput>;

export const webhookSecretRotationInput = z.object({
  /** How long receivers may still accept the previous secret. */
  'overlap-seconds': z.number().int().min(0).max(7 * 86_400).default(86_400),
});

export const configurationVersionInput = z.object({
  'auto-queue-runs': z.boolean().optional(),
  speculative: z.boolean().optional(),
});

/** A request document of `type` with `attributes`. */
export function requestOf<const Type extends string, Attributes extends z.ZodType>(type: Type, attributes: Attributes) {
  return z.object({ data: z.object({ type: z.literal(type), attributes }) });
}
