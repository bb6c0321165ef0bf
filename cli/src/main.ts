#!/usr/bin/env node
/**
 * `edgefarm` (and `kubectl-edgefarm`, so `kubectl edgefarm ...` works): the only place that reads the process's
 * arguments and environment (KUBECONFIG, through @kubernetes/client-node) and exits. Exit codes: cli/README.md.
 */
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { RealCliKube } from './kube.js';
import { run } from './program.js';

const name = path.basename(process.argv[1] ?? 'edgefarm').startsWith('kubectl-') ? 'kubectl edgefarm' : 'edgefarm';
const code = await run(
  process.argv.slice(2),
  {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    now: Date.now,
    kube: (kubeconfig) => {
      const kc = new k8s.KubeConfig();
      if (kubeconfig) kc.loadFromFile(kubeconfig);
      else kc.loadFromDefault();
      return new RealCliKube(kc);
    },
  },
  name,
);
process.exitCode = code;
