#!/usr/bin/env node
/**
 * `edgefarm` (and `kubectl-edgefarm`, so `kubectl edgefarm ...` works): the only place that reads the process's
 * arguments and environment (KUBECONFIG, through @kubernetes/client-node) and exits. Exit codes: cli/README.md.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { CliError, EXIT } from './errors.js';
import { RealCliKube } from './kube.js';
import { run } from './program.js';

const name = path.basename(process.argv[1] ?? 'edgefarm').startsWith('kubectl-') ? 'kubectl edgefarm' : 'edgefarm';
const code = await run(
  process.argv.slice(2),
  {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    now: Date.now,
    readInput: async (file) => {
      if (file !== '-') return readFile(file, 'utf8');
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    kube: (kubeconfig) => {
      const kc = new k8s.KubeConfig();
      if (kubeconfig) kc.loadFromFile(kubeconfig);
      else kc.loadFromDefault();
      // Nothing found ($KUBECONFIG, ~/.kube/config, a pod's ServiceAccount): client-node falls back to
      // http://localhost:8080, and every call would fail with a message about plain HTTP instead of this one.
      if (!kubeconfig && kc.getCurrentCluster()?.server === 'http://localhost:8080' && kc.getCurrentCluster()?.name === 'cluster')
        throw new CliError(EXIT.usage, 'no kubeconfig: set KUBECONFIG, give --kubeconfig FILE, or write ~/.kube/config');
      return new RealCliKube(kc);
    },
  },
  name,
);
process.exitCode = code;
