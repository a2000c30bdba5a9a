// Flag definitions shared by several commands, defined once.

import {Flags} from '@oclif/core'

export const targetFlags = {
  python: Flags.string({description: 'Python interpreter to run the probe with (venv, conda env, system python). Repeatable.', multiple: true, helpGroup: 'TARGETS'}),
  set: Flags.string({
    description: 'Runtime knob for one target or all: [N:]key=value, N is the target\'s position (1-based). Knobs: threads, interop_threads, deterministic, cudnn_benchmark, tf32_matmul, tf32_cudnn, float32_matmul_precision, amp, compile, device, env.NAME.',
    multiple: true,
    helpGroup: 'TARGETS',
  }),
  timeout: Flags.integer({description: 'Seconds before a probe run is killed.', default: 600, min: 1}),
}

export const trainingFlags = {
  seed: Flags.integer({description: 'Training seed (python, torch, batch order).', default: 1234, min: 0}),
  epochs: Flags.integer({description: 'Training epochs.', default: 3, min: 1, max: 1000}),
  rows: Flags.integer({description: 'Rows of the synthetic data set.', default: 2048, min: 32, max: 10_000_000}),
  data: Flags.string({description: 'Train on this CSV instead of the synthetic data (needs --label).', dependsOn: ['label']}),
  label: Flags.string({description: 'The CSV column to predict.'}),
}

export function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
}
