// `repro audit --executor k8s --dry-run`: the audit's run matrix as Kubernetes manifests,
// without running anything. Each image target is one batch — its workloads × planned runs
// (repeats, extra seeds), the cells of one Indexed Job — and each cell's inputs are written as a
// local run writes them (DIR/<run dir>/inputs), for the host to copy into index i's Pod through
// `kubectl exec`. Explaining reruns depend on the first results, so they are not in it.

import {createHash} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {planRuns} from '../core/audit-plan.js'
import {DATA_FILE, encodeWorkloadData, writeProbeInputs} from '../artifacts/inputs.js'
import {ReproError} from '../errors.js'
import {ContainerTarget} from '../targets/container.js'
import {batchManifests, type K8sBatch, type K8sOptions} from '../targets/k8s.js'
import {hostProbeEnv} from '../targets/target.js'
import {type AuditRequest, checkDistributed} from './audit-request.js'
import {runDirName, targetConfig} from './collect.js'
import {resolveWorkloadData} from './data.js'
import {ensureOutDir} from './out-dir.js'
import {targetsFromRefs} from './targets.js'

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/

export interface K8sDryRunResult {
  dir: string
  batches: {name: string; target: string; image_id: string; cells: string[]; job: string; pod: string}[]
}

export async function k8sDryRun(req: AuditRequest & {k8s: K8sOptions}): Promise<K8sDryRunResult> {
  if (req.script)
    throw new ReproError('--executor k8s --dry-run writes the built-in workloads’ runs; a script’s project copy is not built for it yet', {
      subject: '--script',
      hint: 'drop --script (audit the workloads), or run the script audit with --executor local',
    })
  if (req.refs.length === 0)
    throw new ReproError('--executor k8s needs --image targets', {
      subject: 'audit',
      hint: 'name the images, e.g. --image IMAGE --image IMAGE',
    })
  const python = req.refs.find((r) => r.kind === 'python')
  if (python)
    throw new ReproError(`--executor k8s runs --image targets; ${python.value} is an interpreter`, {
      subject: `--python ${python.value}`,
      hint: 'audit the image that holds it with --image, or use --executor local or slurm for --python targets',
    })
  if (req.k8s.namespace !== undefined && !DNS_LABEL.test(req.k8s.namespace))
    throw new ReproError(`${JSON.stringify(req.k8s.namespace)} is not a namespace name`, {
      subject: '--k8s-namespace',
      hint: 'lower-case letters, digits and -, at most 63, e.g. --k8s-namespace ml-audits',
    })
  if (req.k8s.gpuProduct !== undefined && !LABEL_VALUE.test(req.k8s.gpuProduct))
    throw new ReproError(`${JSON.stringify(req.k8s.gpuProduct)} is not a node label value`, {
      subject: '--k8s-gpu-product',
      hint: 'write it as `kubectl get nodes -L nvidia.com/gpu.product` shows it, e.g. NVIDIA-H100-80GB-HBM3',
    })
  if (req.k8s.gpuProduct && req.settings.device !== 'cuda')
    throw new ReproError('--k8s-gpu-product places GPU runs', {subject: '--k8s-gpu-product', hint: 'add --device cuda'})
  // the cluster's GPUs are asked for explicitly: this host's (auto) say nothing about its nodes
  const settings = {...req.settings, device: req.settings.device === 'cuda' ? 'cuda' : 'cpu'}
  const targets = await targetsFromRefs(req.refs, settings)
  checkDistributed(targets, false)
  const workloads = req.workloads
  const data = await resolveWorkloadData(workloads, req.data)
  const encoded = new Map(workloads.map((w) => [w, encodeWorkloadData(data[w]!)]))
  const outDir = path.resolve(req.outDir)
  await ensureOutDir(outDir)
  await fs.mkdir(path.join(outDir, 'k8s'), {recursive: true})
  const opts = {seed: req.seed, epochs: req.epochs, storeSteps: req.storeSteps, targets, timeoutMs: req.timeoutSeconds * 1000}
  const result: K8sDryRunResult = {dir: outDir, batches: []}
  for (const [i, spec] of targets.entries()) {
    const target = spec.target
    if (!(target instanceof ContainerTarget)) throw new Error(`not an image target: ${target.name}`)
    const cells: string[] = []
    const configs: unknown[] = []
    for (const w of workloads) {
      const {bytes, sha256} = encoded.get(w)!
      const config = targetConfig(opts, w, sha256, spec.knobs)
      for (const planned of planRuns(i + 1, req.repeats, req.seed, req.seeds)) {
        const dir = runDirName(w, planned.dir)
        const cell = {...config, data: {...config.data, file: DATA_FILE}, train: {...config.train, seed: planned.seed}}
        await writeProbeInputs(path.join(outDir, dir, 'inputs'), cell, bytes)
        cells.push(dir)
        configs.push(cell)
      }
    }
    const pod = await target.podLaunch({...hostProbeEnv(), ...spec.knobs.env}, req.timeoutSeconds)
    // a name per target and inputs: a second audit of other inputs does not collide in the namespace
    const digest = createHash('sha256')
      .update(JSON.stringify([pod.imageId, cells, configs]))
      .digest('hex')
      .slice(0, 8)
    const batch: K8sBatch = {
      name: `repro-t${i + 1}-${digest}`,
      image: req.refs[i]!.value,
      imageId: pod.imageId,
      mode: 'train',
      cells,
      parallelism: req.jobs,
      gpus: pod.gpus,
      limits: pod.limits,
      env: pod.env,
      launch: pod.launch,
      timeoutSeconds: req.timeoutSeconds,
    }
    const files = batchManifests(batch, req.k8s)
    const job = path.join(outDir, 'k8s', `${batch.name}.yaml`)
    const podFile = path.join(outDir, 'k8s', `${batch.name}.pod.yaml`)
    await fs.writeFile(job, files.job)
    await fs.writeFile(podFile, files.pod)
    result.batches.push({name: batch.name, target: target.name, image_id: pod.imageId, cells, job, pod: podFile})
  }
  return result
}
