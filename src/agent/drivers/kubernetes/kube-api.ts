// The few Kubernetes API calls the kubernetes driver and the agent's
// controller and worker make, over @kubernetes/client-node: pods and the
// job token's secret in one namespace, their watches, a container's log as a
// stream, a signal through exec, and the pod's node. Configuration comes
// from the pod's service account when the agent runs in a cluster, else from
// KUBECONFIG or ~/.kube/config, as kubectl finds it.
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fetch } from 'undici';
import {
  ApiException,
  CoreV1Api,
  Exec,
  HttpMethod,
  KubeConfig,
  PatchStrategy,
  RequestContext,
  VersionApi,
  Watch,
  setHeaderOptions,
  type V1Node,
  type V1Pod,
  type V1Secret,
} from '@kubernetes/client-node';

export type PodEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; pod: V1Pod };

export interface PodQuery {
  labelSelector?: string;
  fieldSelector?: string;
}

/** Loads the cluster's configuration: in-cluster when the service account is mounted, else kubeconfig. */
export function loadKubeConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromDefault();
  return config;
}

/** A 404 from the API: the object is gone. */
export function isNotFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404;
}

export class KubeApi {
  readonly namespace: string;
  readonly #config: KubeConfig;
  readonly #core: CoreV1Api;

  constructor(config: KubeConfig, namespace: string) {
    this.#config = config;
    this.namespace = namespace;
    this.#core = config.makeApiClient(CoreV1Api);
  }

  /** The API server's version, for the driver's fingerprint. */
  async serverVersion(): Promise<string> {
    return (await this.#config.makeApiClient(VersionApi).getCode()).gitVersion;
  }

  createPod(pod: V1Pod): Promise<V1Pod> {
    return this.#core.createNamespacedPod({ namespace: this.namespace, body: pod });
  }

  /** The pod, or undefined once it is gone. */
  async readPod(name: string): Promise<V1Pod | undefined> {
    try {
      return await this.#core.readNamespacedPod({ name, namespace: this.namespace });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async listPods(query: PodQuery): Promise<V1Pod[]> {
    return (await this.#core.listNamespacedPod({ namespace: this.namespace, ...query })).items;
  }

  /** Deletes the pod; `graceSeconds` 0 kills its containers at once. Absent already is fine. */
  /**
   * Deletes the pod; with `uid`, only that instance of the name (a later pod
   * of the same name, a job's next attempt, is left alone). Gone already or
   * replaced is not an error.
   */
  async deletePod(name: string, graceSeconds?: number, uid?: string): Promise<void> {
    try {
      await this.#core.deleteNamespacedPod({
        name,
        namespace: this.namespace,
        ...(graceSeconds === undefined ? {} : { gracePeriodSeconds: graceSeconds }),
        ...(uid === undefined ? {} : { body: { preconditions: { uid } } }),
      });
    } catch (error) {
      const replaced = uid !== undefined && error instanceof ApiException && error.code === 409;
      if (!isNotFound(error) && !replaced) throw error;
    }
  }

  /** Merges labels and annotations into the pod's metadata. */
  async annotatePod(name: string, metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }): Promise<V1Pod> {
    return this.#core.patchNamespacedPod({ name, namespace: this.namespace, body: { metadata } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  createSecret(secret: V1Secret): Promise<V1Secret> {
    return this.#core.createNamespacedSecret({ namespace: this.namespace, body: secret });
  }

  /** Makes the pod the secret's owner, so the cluster deletes the secret with the pod. */
  async ownSecretByPod(secretName: string, pod: V1Pod): Promise<void> {
    const owner = { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid!, blockOwnerDeletion: false };
    await this.#core.patchNamespacedSecret(
      { name: secretName, namespace: this.namespace, body: { metadata: { ownerReferences: [owner] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  async deleteSecret(name: string): Promise<void> {
    try {
      await this.#core.deleteNamespacedSecret({ name, namespace: this.namespace });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async readNode(name: string): Promise<V1Node> {
    return this.#core.readNode({ name });
  }

  /** Why the pod is not running, from its events (Unschedulable, FailedScheduling, …), newest last. */
  async podEvents(name: string): Promise<string[]> {
    const events = await this.#core.listNamespacedEvent({ namespace: this.namespace, fieldSelector: `involvedObject.name=${name}` });
    return events.items.map((event) => `${event.reason ?? ''}: ${event.message ?? ''}`.trim());
  }

  /**
   * Watches pods matching `query`; `onEvent` gets each change. Resolves with
   * a stop function; `onEnd` is called when the watch ends by itself (the
   * API server closes watches after a while: the caller starts another).
   */
  async watchPods(query: PodQuery, onEvent: (event: PodEvent) => void, onEnd: (error?: unknown) => void): Promise<() => void> {
    const watch = new Watch(this.#config);
    const controller = await watch.watch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      { ...query, allowWatchBookmarks: false },
      (type, object) => {
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') onEvent({ type, pod: object as V1Pod });
      },
      (error) => onEnd(error ?? undefined),
    );
    return () => controller.abort();
  }

  /** Watches one node (its cordon: spec.unschedulable). */
  async watchNode(name: string, onNode: (node: V1Node) => void, onEnd: (error?: unknown) => void): Promise<() => void> {
    const watch = new Watch(this.#config);
    const controller = await watch.watch('/api/v1/nodes', { fieldSelector: `metadata.name=${name}` }, (type, object) => {
      if (type === 'ADDED' || type === 'MODIFIED') onNode(object as V1Node);
    }, (error) => onEnd(error ?? undefined));
    return () => controller.abort();
  }

  /**
   * The container's output from its start, following it until the container
   * ends; the stream ends then. Read here rather than with the client's Log,
   * which pipes the response without listening for its errors: a connection
   * cut mid-stream (an API server restarting) would end the agent's process.
   * A cut ends the stream with a line that says so; the job goes on.
   */
  async followLog(podName: string, container: string): Promise<{ output: Readable; stop(): void }> {
    const cluster = this.#config.getCurrentCluster();
    if (!cluster) throw new Error('the Kubernetes configuration has no current cluster');
    const url = new URL(`${cluster.server}/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods/${encodeURIComponent(podName)}/log`);
    url.searchParams.set('container', container);
    url.searchParams.set('follow', 'true');
    const request = new RequestContext(url.toString(), HttpMethod.GET);
    await this.#config.applySecurityAuthentication(request);
    const controller = new AbortController();
    const response = await fetch(url, { headers: request.getHeaders(), dispatcher: request.getDispatcher(), signal: controller.signal });
    if (response.status !== 200 || !response.body) {
      const detail = await response.text().catch(() => '');
      throw new ApiException(response.status, `could not read the log of pod ${podName}: HTTP ${response.status}`, detail, {});
    }
    const output = new PassThrough();
    pipeline(Readable.fromWeb(response.body), output, { end: false })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) output.write(`\n[outpost] the job's log stream from Kubernetes broke (${(error as Error).message}); the job goes on, and its further output is in the pod's log (kubectl logs ${podName})\n`);
      })
      .finally(() => output.end());
    return { output, stop: () => controller.abort() };
  }

  /** Runs `command` in the container (a signal to its first process, a file read); resolves with what it printed. */
  async execute(podName: string, container: string, command: string[]): Promise<string> {
    const exec = new Exec(this.#config);
    let output = '';
    let errors = '';
    const collect = (append: (text: string) => void) =>
      new Writable({
        write: (chunk: Buffer, _encoding, done) => {
          append(chunk.toString('utf8'));
          done();
        },
      });
    const stdout = collect((text) => (output += text));
    const stderr = collect((text) => (errors += text));
    await new Promise<void>((resolve, reject) => {
      exec
        .exec(this.namespace, podName, container, command, stdout, stderr, null, false, (status) => {
          if (status.status === 'Success') resolve();
          else reject(new Error(`${command.join(' ')} in pod ${podName}: ${status.message ?? status.status ?? 'failed'} ${errors}`.trim()));
        })
        .then((socket) => socket.on('close', () => resolve()), reject);
    });
    return output;
  }
}
