// Agents as Kubernetes Jobs: one pod, never restarted (a failed job is the
// control plane's to retry, not the kubelet's), removed a few minutes after
// it ends, with the pool token read from a Secret the launcher never sees,
// CPU and memory limits, and the restricted pod security profile.
import { readFileSync } from 'node:fs';
import { ApiException, BatchV1Api, KubeConfig, loadYaml, type V1Container, type V1Job, type V1PodSpec } from '@kubernetes/client-node';
import type { LauncherConfig } from './config.ts';
import { agentEnvironment, agentNameFor, LaunchError, launchLabels, type Launched, type LaunchRequest, type LaunchTarget } from './target.ts';

const ownerSelector = 'app.kubernetes.io/managed-by=outpost-launcher';
const dataDir = '/var/lib/outpost-agent';
/** Longer than any plan or apply should take; the Job (and its agent) is stopped after it. */
const maxRunSeconds = 12 * 3600;
/** Long enough to read a failed agent's log with kubectl, short enough not to pile up. */
const keepFinishedSeconds = 600;

export function kubernetesTarget(config: LauncherConfig, kubeConfig?: KubeConfig): LaunchTarget {
  const kc = kubeConfig ?? new KubeConfig();
  if (!kubeConfig) kc.loadFromDefault();
  const batch = kc.makeApiClient(BatchV1Api);
  const [secretName, secretKey = 'token'] = (config.tokenSecret ?? '').split(':');
  const template = config.podTemplate ? readPodTemplate(config.podTemplate) : undefined;
  return {
    kind: 'kubernetes',
    async running() {
      const jobs = await batch.listNamespacedJob({ namespace: config.namespace, labelSelector: ownerSelector });
      return jobs.items.filter((job) => !job.status?.completionTime && !(job.status?.failed ?? 0)).length;
    },
    async launch(request: LaunchRequest): Promise<Launched> {
      const name = agentNameFor(request.deliveryId);
      const env = Object.entries(agentEnvironment(request, config.agentEnv ?? {})).map(([key, value]) => ({ name: key, value }));
      const labels = Object.fromEntries(Object.entries(launchLabels(request)).map(([key, value]) => [key, value.slice(0, 63)]));
      const limits = { cpu: String(config.cpus), memory: String(config.memory) };
      const container: V1Container = {
        name: 'agent',
        image: config.image,
        imagePullPolicy: 'IfNotPresent',
        args: ['run'],
        env: [...env, { name: 'OUTPOST_AGENT_DATA_DIR', value: dataDir }, { name: 'OUTPOST_AGENT_TOKEN', valueFrom: { secretKeyRef: { name: secretName!, key: secretKey } } }],
        // The job's working directory and caches: the pod's own, writable whatever the image's user.
        volumeMounts: [{ name: 'agent-data', mountPath: dataDir }],
        resources: { limits, requests: limits },
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      };
      const job: V1Job = {
        metadata: { name, labels },
        spec: {
          backoffLimit: 0,
          ttlSecondsAfterFinished: keepFinishedSeconds,
          // A pod that never starts (an image that cannot be pulled, nowhere to schedule it) must not hold a slot forever.
          activeDeadlineSeconds: maxRunSeconds,
          template: {
            metadata: { labels },
            spec: withTemplate(
              {
                restartPolicy: 'Never',
                automountServiceAccountToken: false,
                securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
                containers: [container],
                volumes: [{ name: 'agent-data', emptyDir: {} }],
              },
              template,
            ),
          },
        },
      };
      try {
        await batch.createNamespacedJob({ namespace: config.namespace, body: job });
      } catch (error) {
        if (error instanceof ApiException && error.code === 409) return { id: name, duplicate: true };
        const detail = error instanceof ApiException ? `${error.code}: ${String(error.body).slice(0, 300)}` : (error as Error).message;
        const hint = error instanceof ApiException && error.code === 403 ? ' (the launcher\'s service account needs create, list on jobs.batch in this namespace)' : '';
        throw new LaunchError(`Kubernetes refused the agent's Job in namespace ${config.namespace}: ${detail}${hint}`);
      }
      return { id: name, duplicate: false };
    },
  };
}

function readPodTemplate(file: string): V1PodSpec {
  const parsed = loadYaml<{ spec?: V1PodSpec } & V1PodSpec>(readFileSync(file, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`OUTPOST_LAUNCHER_POD_TEMPLATE=${file}: expected a pod spec (YAML or JSON)`);
  return parsed.spec ?? parsed;
}

/**
 * The template's pod-level fields win, except the restart policy and the
 * agent container, which stay the launcher's; the template's first
 * container adds environment, mounts and resources to the agent's.
 */
function withTemplate(spec: V1PodSpec, template: V1PodSpec | undefined): V1PodSpec {
  if (!template) return spec;
  const agent = spec.containers[0]!;
  const extra: Partial<V1Container> = template.containers?.[0] ?? {};
  return {
    ...spec,
    ...template,
    restartPolicy: spec.restartPolicy,
    // The template adds to the restricted defaults; a field it sets wins.
    securityContext: { ...spec.securityContext, ...template.securityContext },
    volumes: [...(spec.volumes ?? []), ...(template.volumes ?? [])],
    // A service account named in the template is there to be used (workload identity).
    automountServiceAccountToken: template.serviceAccountName ? (template.automountServiceAccountToken ?? true) : false,
    containers: [
      {
        ...agent,
        env: [...(extra.env ?? []), ...(agent.env ?? [])],
        volumeMounts: [...(agent.volumeMounts ?? []), ...(extra.volumeMounts ?? [])],
        resources: extra.resources ?? agent.resources,
      },
    ],
  };
}
