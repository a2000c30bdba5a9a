// The handful of fingerprint fields a person looks at first, as [label, value] rows.

import type {Fingerprint, Json} from './types.js'

function get(fp: Json, dotted: string): Json {
  let cur: Json = fp
  for (const part of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return null
    cur = (cur as {[k: string]: Json})[part] ?? null
  }
  return cur
}

export function loadedLibraries(fp: Fingerprint, role: string): string[] {
  const libs = fp['libraries']
  if (!Array.isArray(libs)) return []
  return libs
    .filter((l): l is {[k: string]: Json} => typeof l === 'object' && l !== null && !Array.isArray(l) && l['role'] === role)
    .map((l) => `${String(l['real_path'] ?? l['path'] ?? '?')}${l['version'] ? ` (${String(l['version'])})` : ''}`)
}

export function fingerprintHighlights(fp: Fingerprint): [string, string][] {
  const s = (v: Json) => (v === null ? '—' : typeof v === 'string' ? v : JSON.stringify(v))
  const rows: [string, string][] = [
    ['python', s(get(fp, 'python.version'))],
    ['os', `${s(get(fp, 'os.distro'))} · glibc ${s(get(fp, 'os.glibc'))}`],
    ['torch', s(get(fp, 'torch.version'))],
    ['oneDNN', s(get(fp, 'torch.config.onednn'))],
    ['CPU capability', s(get(fp, 'torch.config.cpu_capability'))],
    ['BLAS (loaded)', loadedLibraries(fp, 'blas').join(', ') || '—'],
    ['OpenMP (loaded)', loadedLibraries(fp, 'openmp').join(', ') || '—'],
    ['threads intra/inter-op', `${s(get(fp, 'threads.intra_op'))} / ${s(get(fp, 'threads.inter_op'))}`],
    ['CUDA available', s(get(fp, 'cuda.available'))],
    ['CUDA runtime / cuDNN', `${s(get(fp, 'cuda.runtime'))} / ${s(get(fp, 'cuda.cudnn'))}`],
    ['deterministic algorithms', s(get(fp, 'flags.deterministic_algorithms'))],
    ['cudnn benchmark / deterministic', `${s(get(fp, 'flags.cudnn_benchmark'))} / ${s(get(fp, 'flags.cudnn_deterministic'))}`],
    ['TF32 matmul / cuDNN', `${s(get(fp, 'flags.matmul_allow_tf32'))} / ${s(get(fp, 'flags.cudnn_allow_tf32'))}`],
    ['float32 matmul precision', s(get(fp, 'flags.float32_matmul_precision'))],
  ]
  return rows
}
