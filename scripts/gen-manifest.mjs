#!/usr/bin/env node
// Writes oclif.manifest.json (the commands and their flags) so the CLI does not import every
// command module at startup to find them: `repro check` then loads only what it needs.
import {writeFileSync} from 'node:fs'
import {Plugin} from '@oclif/core'

const plugin = new Plugin({root: process.cwd(), type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
await plugin.load()
writeFileSync('oclif.manifest.json', JSON.stringify(plugin.manifest))
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)
