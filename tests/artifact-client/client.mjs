// Drives the real artifact client, the npm package @actions/artifact (the library behind
// actions/upload-artifact and actions/download-artifact), through its public API, for the
// tests of the local artifact service (tests/integration/support/artifacts.rs).
//
//   node client.mjs upload NAME FILE...                uploadArtifact(NAME, FILES, dirname(FILE))
//   node client.mjs download ID DIR                    downloadArtifact(ID, {path: DIR})
//   node client.mjs download ID DIR --repo O/R --run N   the same with findBy: the REST API
//   node client.mjs list [--repo O/R --run N] [--latest] listArtifacts(...)
//   node client.mjs get NAME [--repo O/R --run N]      getArtifact(NAME, ...)
//
// Prints the call's result as one line of JSON on stdout; the client's own log (which
// @actions/core writes to stdout) goes to stderr. Fails with exit code 1 and the error on
// stderr.
//
// Environment: CODEX_AUTH_TEST_ARTIFACT_CLIENT, the npm prefix the package is installed in
// (scripts/tools: install_artifact_client); what the runner gives a job: ACTIONS_RUNTIME_TOKEN,
// ACTIONS_RESULTS_URL, GITHUB_API_URL (the REST base URL, read by @actions/github), and
// GITHUB_SERVER_URL with a `.localhost` host (any other non-GitHub host is taken for GitHub
// Enterprise Server, which the client refuses); GITHUB_TOKEN for --repo.

import path from 'node:path'
import {pathToFileURL} from 'node:url'

const print = process.stdout.write.bind(process.stdout)
process.stdout.write = process.stderr.write.bind(process.stderr)

const prefix = process.env.CODEX_AUTH_TEST_ARTIFACT_CLIENT
if (!prefix) {
  console.error('CODEX_AUTH_TEST_ARTIFACT_CLIENT is not set (scripts/tools: install_artifact_client)')
  process.exit(2)
}
// The package is ESM-only and installed outside this directory: import its entry point by
// path (its own imports then resolve from its node_modules).
const entry = path.join(prefix, 'node_modules/@actions/artifact/lib/artifact.js')
const {DefaultArtifactClient} = await import(pathToFileURL(entry).href)

/** Splits `--name value` options (and bare `--flag`s) from positional arguments. */
function parse(args) {
  const positional = []
  const options = {}
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--latest') {
      options.latest = true
    } else if (args[i].startsWith('--')) {
      options[args[i].slice(2)] = args[++i]
    } else {
      positional.push(args[i])
    }
  }
  return {positional, options}
}

/** The findBy option, when --repo and --run are given. */
function findBy(options) {
  if (!options.repo) return {}
  const [repositoryOwner, repositoryName] = options.repo.split('/')
  return {
    findBy: {
      token: process.env.GITHUB_TOKEN,
      workflowRunId: Number(options.run),
      repositoryOwner,
      repositoryName
    }
  }
}

const [command, ...rest] = process.argv.slice(2)
const {positional, options} = parse(rest)
const client = new DefaultArtifactClient()

try {
  let result
  switch (command) {
    case 'upload': {
      const [name, ...files] = positional
      const root = options.root ?? path.dirname(path.resolve(files[0]))
      result = await client.uploadArtifact(name, files.map(f => path.resolve(f)), root)
      break
    }
    case 'download': {
      const [id, dir] = positional
      result = await client.downloadArtifact(Number(id), {path: dir, ...findBy(options)})
      break
    }
    case 'list':
      result = await client.listArtifacts({latest: options.latest ?? false, ...findBy(options)})
      break
    case 'get':
      result = await client.getArtifact(positional[0], findBy(options))
      break
    default:
      throw new Error(`unknown command ${command}: upload, download, list or get`)
  }
  print(`${JSON.stringify(result)}\n`)
} catch (error) {
  console.error(error?.stack ?? String(error))
  process.exit(1)
}
