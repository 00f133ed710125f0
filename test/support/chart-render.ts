// Rendering the Helm charts under deploy/helm with `helm template` and
// reading what they render, for the chart suites in test/kubernetes
// (charts-lint, chart-agent-local, chart-agent-k8s): the objects as far as
// the tests read them, the checks every pod spec must pass, and the helpers
// that compare values.yaml, values.schema.json and the README's table.
//
// helm comes from scripts/kubernetes/build-tools.sh (test/support/kubernetes-tools.ts);
// a suite passes `skipWithoutHelm` to describe(), which skips without helm on a
// developer machine. Under CI=true importing this module throws instead.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { load, loadAll } from 'js-yaml';
import { kubernetesToolsForTests } from './kubernetes-tools.ts';

export const root = path.resolve(import.meta.dirname, '..', '..');
export const chartsDir = path.join(root, 'deploy', 'helm');
const { tools: helmTools, skip } = kubernetesToolsForTests('render and lint the Helm charts');
/** For describe()'s skip option: false when helm is there, else why the suite is skipped. */
export const skipWithoutHelm = skip;
const run = promisify(execFile);

/** The release name and namespace every rendering uses. */
export const release = 'outpost';
export const namespace = 'outpost-test';
/** The agent token the ci/ profiles set. */
export const profileToken = 'opp_ci-token';

/** What both charts set for an agent with the default values (node directories, logs, health port, drain), besides its role's settings. */
export const defaultAgentEnv: Readonly<Record<string, string>> = {
  OUTPOST_AGENT_DATA_DIR: '/var/lib/outpost-agent',
  OUTPOST_AGENT_CACHE_DIR: '/var/cache/outpost-agent',
  OUTPOST_AGENT_LOG_FORMAT: 'json',
  OUTPOST_AGENT_LOG_LEVEL: 'info',
  OUTPOST_AGENT_HEALTH_PORT: '9090',
  OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'drain',
  OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT: '3590s',
  OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: '60s',
  OUTPOST_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT: '80',
  OUTPOST_AGENT_ENGINE_BUILD: 'off',
  HOME: '/tmp',
};

// --- the Kubernetes objects, as far as the tests read them -------------------

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}
export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  fsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}
export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  envFrom?: unknown[];
  securityContext?: SecurityContext;
  volumeMounts?: VolumeMount[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
}
export interface Volume {
  name: string;
  emptyDir?: { sizeLimit?: string };
  hostPath?: { path: string; type?: string };
  persistentVolumeClaim?: { claimName: string };
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
}
export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: SecurityContext;
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
  restartPolicy?: string;
  priorityClassName?: string;
  imagePullSecrets?: { name: string }[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: unknown;
  topologySpreadConstraints?: unknown[];
}
export interface Metadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface PodTemplate {
  metadata: Metadata;
  spec: PodSpec;
}
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  rules?: PolicyRule[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  automountServiceAccountToken?: boolean;
}

/** The objects one `helm template` printed, with lookups that fail naming what was there. */
export class Rendered {
  readonly manifests: readonly Manifest[];

  constructor(manifests: readonly Manifest[]) {
    this.manifests = manifests;
  }

  all(kind: string): Manifest[] {
    return this.manifests.filter((manifest) => manifest.kind === kind);
  }

  find(kind: string, name?: string): Manifest | undefined {
    return this.manifests.find((manifest) => manifest.kind === kind && (name === undefined || manifest.metadata.name === name));
  }

  get(kind: string, name?: string): Manifest {
    const found = this.find(kind, name);
    assert.ok(found, `no ${kind}${name === undefined ? '' : ` ${name}`} among ${this.manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')}`);
    return found;
  }

  /** The pod template of a Deployment or DaemonSet. */
  podTemplate(kind: 'Deployment' | 'DaemonSet', name?: string): PodTemplate {
    return (this.get(kind, name).spec as { template: PodTemplate }).template;
  }

  /** The job pod the agent-k8s chart renders into its ConfigMap. */
  jobPod(): PodTemplate & { apiVersion: string; kind: string } {
    const configMap = this.manifests.find((manifest) => manifest.kind === 'ConfigMap' && manifest.metadata.name.endsWith('-pod-template'));
    const text = configMap?.data?.['pod-template.yaml'];
    assert.ok(text, 'the ConfigMap has no pod-template.yaml');
    return load(text) as PodTemplate & { apiVersion: string; kind: string };
  }
}

// --- running helm -------------------------------------------------------------

interface HelmOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs helm and returns its exit code and output rather than throwing: the
 * ci/fail-*.yaml checks expect it to fail. Its cache and config live under
 * /tmp, so a test run neither reads nor changes the user's helm setup.
 */
export async function helm(args: readonly string[]): Promise<HelmOutcome> {
  assert.ok(helmTools, 'helm is not available');
  try {
    const { stdout, stderr } = await run(helmTools.helm, args, { maxBuffer: 32 * 1024 * 1024, env: { ...process.env, HELM_CACHE_HOME: '/tmp/outpost-helm-cache', HELM_CONFIG_HOME: '/tmp/outpost-helm-config' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === 'number' ? failure.code : 1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? String(error) };
  }
}

/** The arguments of `helm template` for the test release, with value files and --set overrides. */
export function templateArgs(chart: string, valueFiles: readonly string[], sets: readonly string[] = []): string[] {
  return [
    'template', release, path.join(chartsDir, chart),
    '--namespace', namespace,
    // A locally built helm defaults to Kubernetes 1.20; the charts need 1.27 or newer.
    '--kube-version', '1.33.0',
    ...valueFiles.flatMap((file) => ['--values', file]),
    ...sets.flatMap((set) => ['--set', set]),
  ];
}

/** Renders a chart with one of its ci/ profiles (and --set overrides); a failure to render fails the test. */
export async function render(chart: string, profile: string, sets: readonly string[] = []): Promise<Rendered> {
  const outcome = await helm(templateArgs(chart, [path.join(chartsDir, chart, 'ci', profile)], sets));
  assert.equal(outcome.code, 0, `helm template ${chart} with ${profile} failed:\n${outcome.stderr}`);
  const manifests = loadAll(outcome.stdout).filter((doc): doc is Manifest => doc !== null && typeof doc === 'object');
  return new Rendered(manifests);
}

/** A chart's ci/ profiles: those that must render, and the fail-*.yaml ones that must not. */
export function profilesOf(chart: string): { good: string[]; failing: string[] } {
  const names = readdirSync(path.join(chartsDir, chart, 'ci')).filter((name) => name.endsWith('.yaml')).sort();
  return { good: names.filter((name) => !name.startsWith('fail-')), failing: names.filter((name) => name.startsWith('fail-')) };
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

// --- what every pod spec must be ---------------------------------------------

/** The env of a container as name → value, or → `secret:<name>/<key>` / `field:<path>`. */
export function envOf(container: Container): Map<string, string> {
  const env = new Map<string, string>();
  for (const variable of container.env ?? []) {
    assert.ok(!env.has(variable.name), `${container.name} sets ${variable.name} twice`);
    const secret = variable.valueFrom?.secretKeyRef;
    const field = variable.valueFrom?.fieldRef;
    env.set(variable.name, secret ? `secret:${secret.name}/${secret.key}` : field ? `field:${field.fieldPath}` : (variable.value ?? ''));
  }
  return env;
}

export function container(spec: PodSpec, name: string): Container {
  const found = spec.containers.find((candidate) => candidate.name === name);
  assert.ok(found, `no container ${name} (there are ${spec.containers.map((c) => c.name).join(', ')})`);
  return found;
}

export function volume(spec: PodSpec, name: string): Volume {
  const found = (spec.volumes ?? []).find((candidate) => candidate.name === name);
  assert.ok(found, `no volume ${name}`);
  return found;
}

export function mount(of: Container, name: string): VolumeMount {
  const found = (of.volumeMounts ?? []).find((candidate) => candidate.name === name);
  assert.ok(found, `${of.name} does not mount ${name}`);
  return found;
}

/**
 * runAsNonRoot as uid/gid 1000 with fsGroup 1000 and RuntimeDefault seccomp;
 * the chart's own containers drop every capability, read-only root with an
 * emptyDir at /tmp, no privilege escalation; the only root container is the
 * init container that prepares hostPath directories, with CHOWN and FOWNER alone.
 */
export function assertSecurePod(spec: PodSpec, ownContainers: readonly string[], where: string): void {
  const pod = spec.securityContext ?? {};
  assert.equal(pod.runAsNonRoot, true, `${where}: pod runAsNonRoot`);
  assert.equal(pod.runAsUser, 1000, `${where}: pod runAsUser`);
  assert.equal(pod.runAsGroup, 1000, `${where}: pod runAsGroup`);
  assert.equal(pod.fsGroup, 1000, `${where}: pod fsGroup`);
  assert.equal(pod.seccompProfile?.type, 'RuntimeDefault', `${where}: seccomp`);
  for (const name of ownContainers) {
    const own = container(spec, name);
    const context = own.securityContext ?? {};
    assert.equal(context.runAsNonRoot, true, `${where}/${name}: runAsNonRoot`);
    assert.equal(context.allowPrivilegeEscalation, false, `${where}/${name}: allowPrivilegeEscalation`);
    assert.equal(context.readOnlyRootFilesystem, true, `${where}/${name}: readOnlyRootFilesystem`);
    assert.notEqual(context.privileged, true, `${where}/${name}: privileged`);
    assert.deepEqual(context.capabilities, { drop: ['ALL'] }, `${where}/${name}: capabilities`);
    assert.equal(mount(own, 'tmp').mountPath, '/tmp', `${where}/${name}: /tmp`);
    assert.ok(volume(spec, 'tmp').emptyDir, `${where}: tmp is an emptyDir`);
  }
  for (const init of spec.initContainers ?? []) {
    assert.equal(init.name, 'prepare-directories', `${where}: unexpected init container ${init.name}`);
    const context = init.securityContext ?? {};
    assert.equal(context.runAsUser, 0, `${where}/${init.name}: root, to chown`);
    assert.equal(context.allowPrivilegeEscalation, false, `${where}/${init.name}: allowPrivilegeEscalation`);
    assert.equal(context.readOnlyRootFilesystem, true, `${where}/${init.name}: readOnlyRootFilesystem`);
    assert.deepEqual(context.capabilities, { drop: ['ALL'], add: ['CHOWN', 'FOWNER'] }, `${where}/${init.name}: capabilities`);
  }
}

/** The stop settings each mode derives from terminationGracePeriodSeconds. */
function shutdownEnv(mode: 'drain' | 'grace' | 'force', seconds: number): Record<string, string> {
  if (mode === 'drain') {
    return { OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'drain', OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT: `${seconds - 70}s`, OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: '60s' };
  }
  if (mode === 'grace') return { OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'grace', OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: `${seconds - 10}s` };
  return { OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'force' };
}

export function assertShutdown(of: Container, spec: PodSpec, mode: 'drain' | 'grace' | 'force', seconds: number): void {
  assert.equal(spec.terminationGracePeriodSeconds, seconds);
  const env = envOf(of);
  const names = ['OUTPOST_AGENT_WORKER_ON_STOP_ACTION', 'OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT', 'OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT'];
  const actual = Object.fromEntries(names.filter((name) => env.has(name)).map((name) => [name, env.get(name)]));
  assert.deepEqual(actual, shutdownEnv(mode, seconds), `${of.name}: ${mode} with T=${seconds}`);
}

/** The egress rules of the metadata-blocking NetworkPolicy. */
export function assertMetadataBlocked(policy: Manifest, selector: Record<string, string>): void {
  const spec = policy.spec as { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; egress: { to?: { ipBlock: { cidr: string; except?: string[] } }[]; ports?: { port: number; protocol: string }[] }[] };
  assert.deepEqual(spec.podSelector.matchLabels, selector);
  assert.deepEqual(spec.policyTypes, ['Egress']);
  const blocks = spec.egress.flatMap((rule) => rule.to ?? []).map((peer) => peer.ipBlock);
  assert.deepEqual(blocks, [
    { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] },
    { cidr: '::/0', except: ['fd00:ec2::254/128'] },
  ]);
  const dns = spec.egress.find((rule) => rule.to === undefined)?.ports;
  assert.deepEqual(dns, [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }], 'DNS is allowed anywhere');
}

export function assertMetadataAllowed(policy: Manifest): void {
  const spec = policy.spec as { egress: { to?: { ipBlock: { cidr: string; except?: string[] } }[] }[] };
  const blocks = spec.egress.flatMap((rule) => rule.to ?? []).map((peer) => peer.ipBlock);
  assert.deepEqual(blocks, [{ cidr: '0.0.0.0/0' }, { cidr: '::/0' }]);
}

// --- values.yaml, values.schema.json and the README agree ---------------------

export interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  definitions?: Record<string, SchemaNode>;
}

/** Definitions that are Kubernetes types: a value of that type is one row of the table, not one per field. */
const kubernetesTypes = new Set(['resources']);

/** The dotted names of every value the schema defines (recursing into the objects it describes field by field). */
export function schemaKeys(schema: SchemaNode): string[] {
  const keys: string[] = [];
  const walk = (node: SchemaNode, prefix: string) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const key = prefix === '' ? name : `${prefix}.${name}`;
      const definition = child.$ref?.replace('#/definitions/', '');
      const resolved = definition === undefined ? child : (schema.definitions?.[definition] ?? {});
      if (resolved.properties && !(definition !== undefined && kubernetesTypes.has(definition))) walk(resolved, key);
      else keys.push(key);
    }
  };
  walk(schema, '');
  return keys.sort();
}

/** The dotted names of values.yaml's values, down to the schema's leaves, with their defaults. */
export function valueDefaults(values: Record<string, unknown>, schemaLeaves: ReadonlySet<string>): Map<string, unknown> {
  const found = new Map<string, unknown>();
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [name, value] of Object.entries(node)) {
      const key = prefix === '' ? name : `${prefix}.${name}`;
      if (!schemaLeaves.has(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) walk(value as Record<string, unknown>, key);
      else found.set(key, value);
    }
  };
  walk(values, '');
  return found;
}

/** Keys of values.yaml (dotted) whose line has no comment right above it. */
export function uncommentedKeys(text: string, keys: ReadonlySet<string>): string[] {
  const stack: { indent: number; key: string }[] = [];
  const missing: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const match = /^(\s*)([A-Za-z][\w-]*):(\s|$)/.exec(line);
    if (!match) return;
    const indent = match[1]?.length ?? 0;
    while (stack.length > 0 && (stack.at(-1)?.indent ?? 0) >= indent) stack.pop();
    stack.push({ indent, key: match[2] ?? '' });
    const key = stack.map((entry) => entry.key).join('.');
    if (keys.has(key) && !/^\s*#/.test(lines[index - 1] ?? '')) missing.push(key);
  });
  return missing;
}

/** The rows of the README's values table: `| \`key\` | \`default\` | meaning |`. */
export function readmeRows(text: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\|\s*`([^`]+)`\s*\|\s*`(.*?)`\s*\|/.exec(line);
    if (match?.[1] !== undefined) rows.set(match[1], match[2] ?? '');
  }
  return rows;
}

