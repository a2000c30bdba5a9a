// zod's parse options for repro's documents. zod 4 compiles a parser per object shape (through
// new Function) the first time it parses one; a CLI parses each document once per process, where
// compiling costs more than it saves: skipping it takes a warm `repro check`'s first parses of
// its config, baseline report and cached runs from ~20-100 ms down to a few ms. Same results.
export const PARSE_ONCE = {jitless: true} as const
