// The host fingerprint kept per boot (src/env/host.ts): a second call with the same boot, CPU,
// kernel, OS and GPUs reads the memo; any change to what the key covers measures again, so
// another machine, other CPU flags or a reboot never reuse a fingerprint.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {RunCache} from '../../../src/app/cache.js'
import {type HostFingerprint, type HostMeasurement, hostFingerprint, hostMemoKey, measureHost} from '../../../src/env/host.js'

const CPUINFO = (flags: string, mhz: string, model = 'AMD EPYC') =>
  [0, 1]
    .map((i) => `processor\t: ${i}\nvendor_id\t: AuthenticAMD\nmodel name\t: ${model}\ncpu MHz\t\t: ${mhz}\nflags\t\t: ${flags}\n`)
    .join('\n')

/** A fake / with the files the key reads. */
function fakeRoot(over: {bootId?: string; cpuinfo?: string; osRelease?: string; nvidia?: string | null; gpus?: string[]} = {}): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'repro-hostroot-'))
  const put = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), {recursive: true})
    writeFileSync(path.join(root, rel), text)
  }
  put('proc/sys/kernel/random/boot_id', `${over.bootId ?? '99455052-cb59-4853-9008-443d638f6f8e'}\n`)
  put('proc/cpuinfo', over.cpuinfo ?? CPUINFO('fpu sse sse2 avx2 avx512f', '2596.132'))
  put('etc/os-release', over.osRelease ?? 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_ID="13"\n')
  if (over.nvidia !== null && over.nvidia !== undefined) put('proc/driver/nvidia/version', over.nvidia)
  for (const g of over.gpus ?? []) put(`proc/driver/nvidia/gpus/${g}/information`, `Model: NVIDIA H200\nBus Location: ${g}\n`)
  return root
}

const FP = (flags: string): HostFingerprint => ({
  cpu: {brand: 'AMD EPYC', cores: 2, physical_cores: 1, flags},
  os: {platform: 'linux', distro: 'Debian GNU/Linux', release: '13', kernel: '6.1.0', arch: 'x64'},
  memory_bytes: 1 << 30,
  gpus: [],
  node: 'v0.0.0-measured',
})

/** A measurement that counts its calls and returns what it is told. */
function counter(result: () => HostMeasurement) {
  const c = {
    calls: 0,
    measure: async () => {
      c.calls++
      return result()
    },
  }
  return c
}

describe('host fingerprint memo', () => {
  test('the same boot, CPU, kernel and OS read the memo; the clock speed does not matter', async () => {
    const memoDir = mkdtempSync(path.join(os.tmpdir(), 'repro-hostmemo-'))
    const root = fakeRoot()
    const m = counter(() => ({fingerprint: FP('avx2 avx512f'), complete: true}))
    const first = await hostFingerprint({memoDir, root, measure: m.measure})
    assert.equal(m.calls, 1)
    assert.equal(first.cpu.flags, 'avx2 avx512f')
    // the CPU clocks down between two reads of /proc/cpuinfo: the same host
    writeFileSync(path.join(root, 'proc/cpuinfo'), CPUINFO('fpu sse sse2 avx2 avx512f', '1499.998'))
    const second = await hostFingerprint({memoDir, root, measure: m.measure})
    assert.equal(m.calls, 1, 'the second call read the memo')
    assert.deepEqual(second, {...first, node: process.version}, 'the memo, with the node that runs now')
    assert.equal(readdirSync(memoDir).length, 1)
  })

  test('a changed boot ID, CPU flags, CPU model, OS release, NVIDIA driver or GPU set measures again', async () => {
    const memoDir = mkdtempSync(path.join(os.tmpdir(), 'repro-hostmemo-'))
    const base = {
      bootId: 'aaaaaaaa-0000-0000-0000-000000000000',
      cpuinfo: CPUINFO('fpu sse sse2 avx2 avx512f', '2596.132'),
      osRelease: 'VERSION_ID="12"\n',
      nvidia: 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n',
      gpus: ['0000:01:00.0'],
    }
    let flags = 'avx2 avx512f'
    const m = counter(() => ({fingerprint: FP(flags), complete: true}))
    const fp = (over: Partial<typeof base>) => hostFingerprint({memoDir, root: fakeRoot({...base, ...over}), measure: m.measure})
    assert.equal((await fp({})).cpu.flags, 'avx2 avx512f')
    assert.equal((await fp({})).cpu.flags, 'avx2 avx512f')
    assert.equal(m.calls, 1, 'an unchanged host reuses it')
    const changes: [string, Partial<typeof base>][] = [
      ['another boot (or machine)', {bootId: 'bbbbbbbb-0000-0000-0000-000000000000'}],
      ['CPU flags without AVX-512 (a VM moved to another host type)', {cpuinfo: CPUINFO('fpu sse sse2 avx2', '2596.132')}],
      ['another CPU model', {cpuinfo: CPUINFO('fpu sse sse2 avx2 avx512f', '2596.132', 'Intel Xeon')}],
      ['one CPU more', {cpuinfo: `${base.cpuinfo}\nprocessor\t: 2\nflags\t\t: fpu sse sse2 avx2 avx512f\n`}],
      ['an OS upgrade (or a container of another OS on this kernel)', {osRelease: 'VERSION_ID="13"\n'}],
      ['another NVIDIA driver', {nvidia: 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.86.10\n'}],
      ['a GPU more', {gpus: ['0000:01:00.0', '0000:02:00.0']}],
    ]
    for (const [what, over] of changes) {
      const before: number = m.calls
      flags = `flags for ${what}`
      assert.equal((await fp(over)).cpu.flags, flags, `${what}: measured, not the memo`)
      assert.equal(m.calls, before + 1, `${what}: measured again`)
    }
    const keys = await Promise.all([{}, ...changes.map(([, o]) => o)].map((o) => hostMemoKey(fakeRoot({...base, ...o}))))
    assert.equal(new Set(keys).size, keys.length, 'every change is another key')
  })

  test('an incomplete measurement (a query timed out) is not kept; no memo dir, or no boot ID, always measures', async () => {
    const memoDir = mkdtempSync(path.join(os.tmpdir(), 'repro-hostmemo-'))
    const root = fakeRoot()
    const partial = counter(() => ({fingerprint: FP(''), complete: false}))
    await hostFingerprint({memoDir, root, measure: partial.measure})
    await hostFingerprint({memoDir, root, measure: partial.measure})
    assert.equal(partial.calls, 2)
    assert.deepEqual(readdirSync(memoDir), [])
    const m = counter(() => ({fingerprint: FP('avx2'), complete: true}))
    await hostFingerprint({root, measure: m.measure})
    await hostFingerprint({root, measure: m.measure})
    assert.equal(m.calls, 2, 'no memo dir (--no-cache)')
    const noBoot = fakeRoot()
    writeFileSync(path.join(noBoot, 'proc/sys/kernel/random/boot_id'), '')
    assert.equal(await hostMemoKey(noBoot), null)
    await hostFingerprint({memoDir, root: noBoot, measure: m.measure})
    await hostFingerprint({memoDir, root: noBoot, measure: m.measure})
    assert.equal(m.calls, 4, 'no boot ID: never memoized')
  })

  test('a damaged memo file is measured over', async () => {
    const memoDir = mkdtempSync(path.join(os.tmpdir(), 'repro-hostmemo-'))
    const root = fakeRoot()
    const m = counter(() => ({fingerprint: FP('avx2'), complete: true}))
    await hostFingerprint({memoDir, root, measure: m.measure})
    const [file] = readdirSync(memoDir)
    writeFileSync(path.join(memoDir, file!), '{"cpu": {"brand": 1}}')
    assert.equal((await hostFingerprint({memoDir, root, measure: m.measure})).cpu.flags, 'avx2')
    assert.equal(m.calls, 2)
    assert.equal(JSON.parse(readFileSync(path.join(memoDir, file!), 'utf8')).cpu.flags, 'avx2', 'rewritten')
  })

  test("kept inside the run cache, where the cache's eviction passes it by", async () => {
    const cache = new RunCache(mkdtempSync(path.join(os.tmpdir(), 'repro-cache-')), 1)
    const m = counter(() => ({fingerprint: FP('avx2'), complete: true}))
    await hostFingerprint({memoDir: cache.hostMemoDir(), root: fakeRoot(), measure: m.measure})
    const run = mkdtempSync(path.join(os.tmpdir(), 'repro-run-'))
    writeFileSync(path.join(run, 'run.json'), 'x'.repeat(100))
    await cache.store('k1', run)
    assert.equal(readdirSync(cache.hostMemoDir()).length, 1, 'the memo survives an eviction that removed the run')
    assert.deepEqual(
      readdirSync(cache.dir).filter((n) => n === 'k1'),
      [],
    )
  })

  test('on this host: the memo holds what systeminformation measures', async () => {
    const memoDir = mkdtempSync(path.join(os.tmpdir(), 'repro-hostmemo-'))
    const measured = await measureHost()
    const first = await hostFingerprint({memoDir})
    const second = await hostFingerprint({memoDir})
    assert.deepEqual(second, first)
    assert.deepEqual({...first, cpu: {...first.cpu}}, {...measured.fingerprint, cpu: {...measured.fingerprint.cpu}})
    if ((await hostMemoKey()) !== null) assert.equal(readdirSync(memoDir).length, measured.complete ? 1 : 0)
  })
})
