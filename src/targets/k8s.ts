// The Kubernetes executor's manifests (`repro audit --executor k8s --dry-run`), designed and
// rendered, not run against a cluster: one Indexed Job per batch of probe runs of one image
// (a cell per index), its Pods running the image with the launcher local containers use
// (container_boot.py, waiting for its inputs and lingering for the copy-out, both through
// `kubectl exec`), the local hardening as securityContext, limits, the work area as a memory
// emptyDir, and a deny-all NetworkPolicy (a Pod has no `--network none`). Pure.

// types only, erased at build: tsc holds every object below to the Kubernetes API's field names
// and types (kubernetes-models, a devDependency), which its runtime validation does not
import type {IJob} from 'kubernetes-models/batch/v1'
import type {INetworkPolicy} from 'kubernetes-models/networking.k8s.io/v1'
import type {IPod, IPodSpec} from 'kubernetes-models/v1'
import {type ContainerLimits, launcherArgs, type LaunchSpec} from './container-args.js'
import {parseSize, WORK_AREA} from './image-launch.js'
import {type YamlValue, yamlDocuments} from './yaml.js'

export interface K8sOptions {
  namespace?: string
  /** the node label nvidia.com/gpu.product (GPU feature discovery) the Pods must run on */
  gpuProduct?: string
}

/** One batch: the probe runs (cells) of one image, one mode and one environment. */
export interface K8sBatch {
  /** the Job's name (a DNS label of at most 52 characters: its Pods append the index and a suffix) */
  name: string
  /** the image as the user named it, and the ID the dry run inspected */
  image: string
  imageId: string
  mode: 'fingerprint' | 'train' | 'script' | 'replay'
  /** each cell's run directory, in index order */
  cells: string[]
  /** Pods at once (--jobs) */
  parallelism: number
  gpus: boolean
  limits: ContainerLimits
  /** what repro adds to the image's environment (image-launch.probeEnvironment) */
  env: Record<string, string>
  launch: LaunchSpec
  timeoutSeconds: number
}

export const TERMINATION_LOG = '/dev/termination-log'
const WORK_VOLUME = 'repro-work'
const TMP_VOLUME = 'repro-tmp'
const NAME = /^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/

/**
 * The commands the host runs in index i's Pod, each as `kubectl exec -i POD -c probe -- python3
 * -c …`: the inputs tar (container.inputsTar, `ready` last) from stdin into the work area; once
 * status.json is there, the status and the artifacts as a tar on stdout (regular files only);
 * then, with the artifacts safe on the host, `collected`, and the launcher exits with the probe's
 * code. Python, not `tar`: an image has the one for sure, not the other.
 */
export const POD_COPY_IN = `import sys, tarfile
t = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
t.extractall("${WORK_AREA}", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))`

export const POD_COPY_OUT = `import os, sys, tarfile
t = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
for d, prefix in (("${WORK_AREA}", ""), ("${WORK_AREA}/out", "out/")):
    names = sorted(os.listdir(d)) if os.path.isdir(d) else []
    for n in names:
        p = os.path.join(d, n)
        if (prefix or n == "status.json") and os.path.isfile(p) and not os.path.islink(p):
            t.add(p, prefix + n, recursive=False)
t.close()`

export const POD_COLLECTED = `open("${WORK_AREA}/collected", "w").close()`

/** docker's size (`4g`, `512m`) as a Kubernetes quantity (`4Gi`, `512Mi`). */
export function quantity(size: string): string {
  const bytes = parseSize(size)
  if (bytes === null) throw new Error(`not a size: ${size}`)
  for (const [unit, n] of [
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ] as const)
    if (bytes % n === 0) return `${bytes / n}${unit}`
  return String(bytes)
}

/** docker's `--cpus 1.5` as a Kubernetes CPU quantity (`1500m`; whole CPUs as they are). */
export function cpuQuantity(cpus: string): string {
  const n = Number(cpus)
  if (!/^\d+(\.\d+)?$/.test(cpus.trim()) || !(n > 0)) throw new Error(`not a CPU count: ${cpus}`)
  return Number.isInteger(n) ? String(n) : `${Math.round(n * 1000)}m`
}

function labels(batch: K8sBatch): Record<string, string> {
  return {'app.kubernetes.io/name': 'repro', 'app.kubernetes.io/component': 'probe', 'repro/batch': batch.name}
}

function metadata(batch: K8sBatch, opts: K8sOptions, name: string): {name: string; namespace?: string; labels: Record<string, string>} {
  return {name, ...(opts.namespace ? {namespace: opts.namespace} : {}), labels: labels(batch)}
}

/** The Pod every index runs: the same for all of them, since each cell's inputs arrive through `kubectl exec`. */
export function podSpec(batch: K8sBatch, opts: K8sOptions): IPodSpec {
  const limits: Record<string, string> = {
    cpu: cpuQuantity(batch.limits.cpus),
    memory: quantity(batch.limits.memory),
    ...(batch.gpus ? {'nvidia.com/gpu': '1'} : {}),
  }
  const env = {...batch.env, REPRO_TERMINATION_LOG: TERMINATION_LOG}
  const args = launcherArgs(batch.launch, batch.mode)
  return {
    restartPolicy: 'Never',
    // the probe needs no API access and no service variables
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    // the launcher (PID 1) ignores SIGTERM while it lingers; there is nothing to save on a stop
    terminationGracePeriodSeconds: 5,
    securityContext: {seccompProfile: {type: 'RuntimeDefault'}},
    ...(opts.gpuProduct ? {nodeSelector: {'nvidia.com/gpu.product': opts.gpuProduct}} : {}),
    containers: [
      {
        name: 'probe',
        image: batch.image,
        imagePullPolicy: 'IfNotPresent',
        // `command` replaces the image's ENTRYPOINT, `args` its CMD: a kept entrypoint runs the
        // interpreter as its arguments, as `docker create IMAGE python3 …` does
        ...(batch.launch.keepEntrypoint ? {args: [batch.launch.interpreter, ...args]} : {command: [batch.launch.interpreter], args}),
        env: Object.entries(env)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([name, value]) => ({name, value})),
        // requests equal to limits: the Guaranteed class, never evicted for another Pod's burst
        resources: {limits, requests: limits},
        securityContext: {
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          privileged: false,
          capabilities: {drop: ['ALL']},
        },
        terminationMessagePath: TERMINATION_LOG,
        terminationMessagePolicy: 'File',
        volumeMounts: [
          {name: WORK_VOLUME, mountPath: WORK_AREA},
          {name: TMP_VOLUME, mountPath: '/tmp'},
        ],
      },
    ],
    // tmpfs, counted against the memory limit as a local run's tmpfs volume is
    volumes: [
      {name: WORK_VOLUME, emptyDir: {medium: 'Memory', sizeLimit: quantity(batch.limits.workArea)}},
      {name: TMP_VOLUME, emptyDir: {medium: 'Memory', sizeLimit: quantity(batch.limits.tmpfsSize)}},
    ],
  }
}

/** The batch as one Indexed Job: completions = cells, parallelism = --jobs, no retries. */
export function indexedJob(batch: K8sBatch, opts: K8sOptions): IJob {
  if (!NAME.test(batch.name)) throw new Error(`not a Job name: ${batch.name}`)
  const waves = Math.ceil(batch.cells.length / batch.parallelism)
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      ...metadata(batch, opts, batch.name),
      annotations: {'repro/image-id': batch.imageId, 'repro/cells': JSON.stringify(batch.cells)},
    },
    spec: {
      completionMode: 'Indexed',
      completions: batch.cells.length,
      parallelism: Math.min(batch.parallelism, batch.cells.length),
      // a failed run is a result to report, not to retry; one index failing leaves the others running
      backoffLimitPerIndex: 0,
      // every wave may take the run's timeout plus the copies and scheduling
      activeDeadlineSeconds: waves * (batch.timeoutSeconds + 300),
      ttlSecondsAfterFinished: 3600,
      template: {metadata: {labels: labels(batch)}, spec: podSpec(batch, opts)},
    },
  }
}

/** No traffic in or out of the batch's Pods (`kubectl exec` goes through the kubelet, not the Pod network). */
export function denyAllPolicy(batch: K8sBatch, opts: K8sOptions): INetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: metadata(batch, opts, `${batch.name}-deny-all`),
    spec: {podSelector: {matchLabels: {'repro/batch': batch.name}}, policyTypes: ['Ingress', 'Egress']},
  }
}

/** The Job's Pod template as a bare Pod, for a local check with `podman kube play --network none`. */
export function templatePod(batch: K8sBatch, opts: K8sOptions): IPod {
  return {apiVersion: 'v1', kind: 'Pod', metadata: metadata(batch, opts, `${batch.name}-pod`), spec: podSpec(batch, opts)}
}

/** An API object as YAML takes it: plain data, built above without undefined fields. */
const asYaml = (o: IJob | INetworkPolicy | IPod) => o as unknown as {[key: string]: YamlValue}

/** The files of one batch: its NetworkPolicy and Job, and the template as a Pod. */
export function batchManifests(batch: K8sBatch, opts: K8sOptions): {job: string; pod: string} {
  return {
    job: `# repro: Job ${batch.name} (index i runs cell i of its repro/cells annotation) and its deny-all NetworkPolicy\n${yamlDocuments([asYaml(denyAllPolicy(batch, opts)), asYaml(indexedJob(batch, opts))])}`,
    pod: `# repro: the Pod template of Job ${batch.name}, for \`podman kube play --network none\`\n${yamlDocuments([asYaml(templatePod(batch, opts))])}`,
  }
}
