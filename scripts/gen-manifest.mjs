#!/usr/bin/env node
// Writes oclif.manifest.json (the commands and their flags), which oclif reads to find a command
// and its flags instead of asking every command class (they all come in one bundle,
// dist/src/bundle/repro.js: scripts/bundle.mjs runs first).
import {writeFileSync} from 'node:fs'
import {Plugin} from '@oclif/core'

const plugin = new Plugin({root: process.cwd(), type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
await plugin.load()
writeFileSync('oclif.manifest.json', JSON.stringify(plugin.manifest))
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)
