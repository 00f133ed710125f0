// Agents as Kubernetes Jobs: one pod, never restarted (a failed job is the
// control plane's to retry, not the kubelet's), removed a few minutes after
// it ends, with the pool token read from a Secret the launcher never sees,
// CPU and memory limits, and the restricted pod security profile.
import { ApiException, BatchV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import type { LauncherConfig } from './config.ts';
import { agentEnvironment, agentNameFor, LaunchError, launchLabels, type Launched, type LaunchRequest, type LaunchTarget } from './target.ts';

const ownerSelector = 'app.kubernetes.io/managed-by=outpost-launcher';
/** Long enough to read a failed agent's log with kubectl, short enough not to pile up. */
const keepFinishedSeconds = 600;

export function kubernetesTarget(config: LauncherConfig, kubeConfig?: KubeConfig): LaunchTarget {
  const kc = kubeConfig ?? new KubeConfig();
  if (!kubeConfig) kc.loadFromDefault();
  const batch = kc.makeApiClient(BatchV1Api);
  const [secretName, secretKey = 'token'] = (config.tokenSecret ?? '').split(':');
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
      const job: V1Job = {
        metadata: { name, labels },
        spec: {
          backoffLimit: 0,
          ttlSecondsAfterFinished: keepFinishedSeconds,
          template: {
            metadata: { labels },
            spec: {
              restartPolicy: 'Never',
              automountServiceAccountToken: false,
              securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
              containers: [
                {
                  name: 'agent',
                  image: config.image,
                  imagePullPolicy: 'IfNotPresent',
                  args: ['run'],
                  env: [...env, { name: 'OUTPOST_AGENT_TOKEN', valueFrom: { secretKeyRef: { name: secretName!, key: secretKey } } }],
                  resources: { limits, requests: limits },
                  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                },
              ],
            },
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
