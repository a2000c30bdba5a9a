// The Kubernetes manifests of `--executor k8s --dry-run` (src/targets/k8s.ts): every object the
// renderer emits is checked against the Kubernetes API schemas (kubernetes-models validates on
// .validate()), the YAML text is read back by a real YAML parser, and the Pod runs the launcher a
// local container runs, hardened the same way.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {Job} from 'kubernetes-models/batch/v1'
import {NetworkPolicy} from 'kubernetes-models/networking.k8s.io/v1'
import {Pod} from 'kubernetes-models/v1'
import {createArgs, DEFAULT_LIMITS} from '../../../src/targets/container-args.js'
import {
  batchManifests,
  cpuQuantity,
  denyAllPolicy,
  indexedJob,
  type K8sBatch,
  type K8sOptions,
  quantity,
  templatePod,
} from '../../../src/targets/k8s.js'
import {toYaml, type YamlValue, yamlDocuments} from '../../../src/targets/yaml.js'

const PYTHON = process.env['REPRO_TEST_PYTHON'] ?? '/usr/bin/python3'
const BOOT = '"""the launcher"""\nimport sys\n\n\ndef main():\n    return 0\n'

const batch = (over: Partial<K8sBatch> = {}): K8sBatch => ({
  name: 'repro-t1-0123abcd',
  image: 'registry.example/team/pytorch:2.6',
  imageId: 'sha256:690de46550af41e169d4182cef563a8da544694e4514fe06432d63dd3f0bba82',
  mode: 'train',
  cells: ['t1-r1', 't1-r2', 't1-s1235'],
  parallelism: 2,
  gpus: false,
  limits: {...DEFAULT_LIMITS, memory: '6g', cpus: '1.5', workArea: '512m'},
  env: {PYTHONPATH: '/opt/site:/repro/probe', HOME: '/tmp', CUBLAS_WORKSPACE_CONFIG: ':4096:8'},
  launch: {keepEntrypoint: false, interpreter: 'python3', boot: BOOT, lingerSeconds: 720},
  timeoutSeconds: 600,
  ...over,
})

// biome-ignore lint/suspicious/noExplicitAny: a test walks the rendered manifests by known paths
type Obj = Record<string, any>
const container = (pod: Obj): Obj => (pod['spec'] ?? pod)['containers'][0]

/** YAML documents as a real parser reads them (PyYAML), or null when the python has none. */
function parseYaml(text: string): unknown[] | null {
  const r = spawnSync(PYTHON, ['-c', 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))'], {
    input: text,
    encoding: 'utf8',
  })
  if (r.status !== 0 && /No module named .?yaml/.test(r.stderr)) return null
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}
// PyYAML comes with Debian's python3-torch (it depends on python3-yaml), which the bootstrap installs
const noYaml = spawnSync(PYTHON, ['-c', 'import yaml']).status !== 0 && `${PYTHON} has no yaml module (apt-get install python3-yaml)`

const VARIANTS: [string, Partial<K8sBatch>, K8sOptions][] = [
  ['cpu, entrypoint skipped', {}, {}],
  [
    'GPU on a product, a namespace',
    {gpus: true, limits: {...DEFAULT_LIMITS}},
    {namespace: 'ml-audits', gpuProduct: 'NVIDIA-H100-80GB-HBM3'},
  ],
  [
    'entrypoint kept, one cell',
    {launch: {keepEntrypoint: true, interpreter: '/opt/conda/bin/python', boot: BOOT, lingerSeconds: 120}, cells: ['t2-cnn-r1']},
    {},
  ],
]

describe('Kubernetes manifests (--executor k8s --dry-run)', () => {
  for (const [name, over, opts] of VARIANTS) {
    test(`every object is valid against the Kubernetes API schemas: ${name}`, () => {
      const b = batch(over)
      new Job(indexedJob(b, opts)).validate()
      new NetworkPolicy(denyAllPolicy(b, opts)).validate()
      new Pod(templatePod(b, opts)).validate()
    })
  }

  test('the schema check is real: a wrong type is refused', () => {
    const job = indexedJob(batch(), {}) as Obj
    job['spec'].completions = 'three'
    assert.throws(() => new Job(job as never).validate(), /completions must be integer/)
  })

  test('one Indexed Job per batch: a cell per index, --jobs Pods at once, no retries, a deadline per wave', () => {
    const job = indexedJob(batch(), {}) as Obj
    assert.equal(job['spec'].completionMode, 'Indexed')
    assert.equal(job['spec'].completions, 3)
    assert.equal(job['spec'].parallelism, 2)
    assert.equal(job['spec'].backoffLimitPerIndex, 0)
    assert.equal(job['spec'].activeDeadlineSeconds, 2 * 900)
    assert.deepEqual(JSON.parse(job['metadata'].annotations['repro/cells']), ['t1-r1', 't1-r2', 't1-s1235'])
    assert.equal(job['metadata'].annotations['repro/image-id'], batch().imageId)
    assert.equal(job['spec'].template.spec.restartPolicy, 'Never')
    assert.equal((indexedJob(batch({cells: ['a']}), {}) as Obj)['spec'].parallelism, 1)
    assert.throws(() => indexedJob(batch({name: 'Repro_T1'}), {}), /not a Job name/)
  })

  test('the Pod runs the launcher a local container runs, with the same interpreter and arguments', () => {
    for (const keep of [false, true]) {
      const b = batch({launch: {...batch().launch, keepEntrypoint: keep}})
      const local = createArgs({
        engine: 'podman',
        image: b.imageId,
        mode: 'train',
        gpus: false,
        limits: b.limits,
        env: {},
        labels: {},
        launch: b.launch,
      })
      const c = container(templatePod(b, {}))
      if (keep) {
        assert.equal(c['command'], undefined, 'a kept entrypoint stays the image’s')
        assert.deepEqual(c['args'], local.slice(local.indexOf(b.imageId) + 1))
      } else {
        assert.deepEqual(c['command'], [local[local.indexOf('--entrypoint') + 1]])
        assert.deepEqual(c['args'], local.slice(local.indexOf(b.imageId) + 1))
      }
    }
  })

  test('the local hardening as securityContext, limits from --cpus/--memory, GPUs, the work area as a memory emptyDir', () => {
    const pod = templatePod(batch(), {}) as Obj
    const c = container(pod)
    assert.deepEqual(c['securityContext'], {
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: {drop: ['ALL']},
    })
    assert.deepEqual(c['resources'].limits, {cpu: '1500m', memory: '6Gi'})
    assert.deepEqual(c['resources'].requests, c['resources'].limits)
    assert.equal(pod['spec'].automountServiceAccountToken, false)
    assert.deepEqual(pod['spec'].volumes, [
      {name: 'repro-work', emptyDir: {medium: 'Memory', sizeLimit: '512Mi'}},
      {name: 'repro-tmp', emptyDir: {medium: 'Memory', sizeLimit: '1Gi'}},
    ])
    assert.deepEqual(
      c['volumeMounts'].map((m: Obj) => m['mountPath']),
      ['/repro', '/tmp'],
    )
    assert.equal(c['terminationMessagePath'], '/dev/termination-log')
    assert.ok(c['env'].some((e: Obj) => e['name'] === 'REPRO_TERMINATION_LOG' && e['value'] === '/dev/termination-log'))
    assert.equal(pod['spec'].nodeSelector, undefined)

    const gpu = templatePod(batch({gpus: true}), {gpuProduct: 'NVIDIA-A100-SXM4-80GB'}) as Obj
    assert.equal(container(gpu)['resources'].limits['nvidia.com/gpu'], '1')
    assert.deepEqual(gpu['spec'].nodeSelector, {'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB'})
  })

  test('the NetworkPolicy denies all traffic of exactly the batch’s Pods', () => {
    const policy = denyAllPolicy(batch(), {namespace: 'ml'}) as Obj
    const job = indexedJob(batch(), {namespace: 'ml'}) as Obj
    assert.deepEqual(policy['spec'].policyTypes, ['Ingress', 'Egress'])
    assert.equal(policy['spec'].ingress, undefined)
    assert.equal(policy['spec'].egress, undefined)
    for (const [k, v] of Object.entries(policy['spec'].podSelector.matchLabels)) assert.equal(job['spec'].template.metadata.labels[k], v)
    assert.equal(policy['metadata'].namespace, 'ml')
  })

  test('quantities: docker sizes and CPU counts in Kubernetes units', () => {
    assert.equal(quantity('4g'), '4Gi')
    assert.equal(quantity('512m'), '512Mi')
    assert.equal(quantity('1536m'), '1536Mi')
    assert.equal(quantity('100k'), '100Ki')
    assert.equal(quantity('1000'), '1000')
    assert.equal(cpuQuantity('2'), '2')
    assert.equal(cpuQuantity('0.5'), '500m')
    assert.throws(() => cpuQuantity('two'))
  })

  test('the YAML reads back as the objects, the launcher’s source verbatim', {skip: noYaml}, () => {
    for (const [, over, opts] of VARIANTS) {
      const b = batch(over)
      const files = batchManifests(b, opts)
      assert.deepEqual(parseYaml(files.job), [denyAllPolicy(b, opts), indexedJob(b, opts)])
      assert.deepEqual(parseYaml(files.pod), [templatePod(b, opts)])
    }
  })

  test('YAML scalars: nothing a YAML 1.1 reader takes for a boolean, number or null stays plain', {skip: noYaml}, () => {
    const tricky = [
      'yes',
      'No',
      'on',
      'OFF',
      'y',
      'null',
      '~',
      '1',
      '0o17',
      '1e3',
      '.inf',
      '',
      ' lead',
      'a: b',
      '- x',
      '#c',
      'x #y',
      '@at',
      '`q',
      '"',
      "'",
      '\\',
      'tab\there',
      'nul\u0000',
      'del\u007f',
      'ls\u2028',
      'é ü',
      '*ref',
      '&anchor',
      '!tag',
      '%dir',
      '{a}',
      '[a]',
      '?',
      ':4096:8',
    ]
    const multi = [
      'two\nlines',
      'trailing\n',
      'kept\n\n',
      '  indented\nfirst',
      '\nleading blank',
      'crlf\r\nline',
      'tail   \nspaces',
      '\n\n',
    ]
    const nested: YamlValue = [[1, 'x'], {k: []}, {}]
    const value = {plain: tricky, multi, nested, 'nvidia.com/gpu': '1', true: false, n: null, f: 1.5}
    assert.deepEqual(parseYaml(toYaml(value)), [value])
    assert.deepEqual(parseYaml(yamlDocuments([{a: 1}, {b: 'two'}])), [{a: 1}, {b: 'two'}])
    // an absent optional field is left out, as JSON.stringify does
    assert.equal(toYaml({a: undefined as unknown as YamlValue, b: 1}), 'b: 1\n')
  })
})
