// The engine CLI's answers, parsed: server platform, image identity and config, unreachable
// engines, start failures explained (podman without CAP_SYS_RESOURCE), the orphan sweep's format.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {engineUnreachable, ownerFormat, parseImageInspect, parseServerVersion} from '../../../src/targets/engine.js'
import {explainStartFailure} from '../../../src/targets/engine-check.js'

describe('engine answers', () => {
  test('server version and platform, as docker and podman format them', () => {
    assert.deepEqual(parseServerVersion('20.10.24+dfsg1 linux/amd64\n'), {version: '20.10.24+dfsg1', os: 'linux', architecture: 'amd64'})
    assert.deepEqual(parseServerVersion('4.3.1 linux/arm64'), {version: '4.3.1', os: 'linux', architecture: 'arm64'})
    assert.equal(parseServerVersion('4.3.1'), undefined)
  })
  test("image identity: podman's bare digest gets docker's sha256: prefix; the config comes along", () => {
    const id = 'a'.repeat(64)
    const img = parseImageInspect(
      JSON.stringify([{Id: id, Architecture: 'amd64', Os: 'linux', Config: {User: '1000:1000', Entrypoint: ['/e.sh']}}]),
    )
    assert.equal(img.id, `sha256:${id}`)
    assert.equal(img.config.user, '1000:1000')
    assert.deepEqual(img.config.entrypoint, ['/e.sh'])
    assert.equal(parseImageInspect(JSON.stringify([{Id: `sha256:${id}`}])).id, `sha256:${id}`)
  })
  test('an engine that went away, as the docker and podman CLIs say it', () => {
    for (const text of [
      'Cannot connect to the Docker daemon at unix:///tmp/x/docker.sock. Is the docker daemon running?',
      'error during connect: Post "http://docker.example/v1.41/containers/x/wait": EOF',
      'Cannot connect to Podman. Please verify your connection to the Linux system using `podman system connection list`: unable to connect to Podman socket',
      'ssh: connect to host 127.0.0.1 port 2222: Connection refused',
    ])
      assert.equal(engineUnreachable(text), true, text)
    assert.equal(engineUnreachable('Error: No such container:path: abc:/repro/status.json'), false)
    assert.equal(engineUnreachable('Could not find the file /repro/status.json in container abc'), false)
  })
  test("orphan sweep: docker's .Label, podman's index .Labels", () => {
    assert.equal(ownerFormat('docker'), '{{.ID}} {{.Label "repro.pid"}} {{.Label "repro.host"}}')
    assert.equal(ownerFormat('podman'), '{{.ID}} {{index .Labels "repro.pid"}} {{index .Labels "repro.host"}}')
  })
})

describe('can the engine start containers (repro doctor)', () => {
  test('reaching exec of a path that does not exist means the runtime works', () => {
    const r = explainStartFailure(
      'docker',
      'Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/nonexistent/repro-doctor": stat /nonexistent/repro-doctor: no such file or directory: unknown',
    )
    assert.deepEqual(r, {ok: true, why: null, hint: null})
  })
  test('podman without CAP_SYS_RESOURCE: why, and the containers.conf lines', () => {
    const r = explainStartFailure(
      'podman',
      'Error: unable to start container "abc": runc: runc create failed: unable to start container process: error during container init: error setting rlimits for ready process: error setting rlimit type 7: operation not permitted: OCI permission denied',
    )
    assert.equal(r.ok, false)
    assert.match(r.why!, /error setting rlimit type 7: operation not permitted.*no CAP_SYS_RESOURCE/)
    assert.match(r.hint!, /default_ulimits = \["nofile=1024:1024", "nproc=1024:1024"\].*runtime = "runc"/)
  })
  test('anything else: the last line and where to look', () => {
    const r = explainStartFailure('docker', 'Error: something odd\n')
    assert.deepEqual(r, {ok: false, why: 'Error: something odd', hint: 'check `docker info` and try `docker run --rm IMAGE true`'})
  })
})
