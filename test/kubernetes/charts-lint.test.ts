// Every chart under deploy/helm (agent-local, agent-k8s): it has the ci/
// profiles it promises and the Chart.yaml metadata, every good profile passes
// `helm lint --strict` and renders objects of a shape Kubernetes accepts,
// every ci/fail-*.yaml fails to render with the message its first line names,
// values.yaml, values.schema.json and the README's values table list the same
// values (each commented in values.yaml), and the env names the chart sets are
// written in its envNames template alone.
//
// Needs helm (scripts/kubernetes/build-tools.sh): skipped without it, except
// under CI=true where its absence fails the suite.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { load } from 'js-yaml';
import {
  chartsDir, helm, namespace, profilesOf, readmeRows, release, render, root, schemaKeys, skipWithoutHelm,
  templateArgs, uncommentedKeys, valueDefaults, type SchemaNode,
} from '../support/chart-render.ts';

for (const chart of ['agent-local', 'agent-k8s']) {
  describe(`${chart}: lint, render, fail`, { skip: skipWithoutHelm }, () => {
    const { good, failing } = profilesOf(chart);

    test('has the profiles the charts promise', () => {
      for (const profile of ['default-values.yaml', 'existing-secret-values.yaml', 'hostpath-values.yaml', 'shutdown-drain-values.yaml', 'shutdown-grace-values.yaml', 'shutdown-force-values.yaml', 'network-policy-off-values.yaml', 'service-monitor-values.yaml']) {
        assert.ok(good.includes(profile), `ci/${profile} is missing`);
      }
      assert.ok(failing.length >= 5, 'too few ci/fail-*.yaml profiles');
    });

    test('Chart.yaml: apiVersion v2, version 0.1.0, appVersion the package version, Kubernetes 1.27 or newer', () => {
      const meta = load(readFileSync(path.join(chartsDir, chart, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
      const packageVersion = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
      assert.equal(meta.apiVersion, 'v2');
      assert.equal(meta.name, chart);
      assert.equal(meta.version, '0.1.0');
      assert.equal(meta.appVersion, packageVersion);
      assert.equal(meta.kubeVersion, '>=1.27.0-0');
    });

    test('helm lint --strict passes with every profile', async () => {
      const results = await Promise.all(good.map(async (profile) => ({ profile, outcome: await helm(['lint', '--strict', path.join(chartsDir, chart), '--namespace', namespace, '--values', path.join(chartsDir, chart, 'ci', profile)]) })));
      const failed = results.filter(({ outcome }) => outcome.code !== 0);
      assert.deepEqual(failed.map(({ profile, outcome }) => `${profile}: ${outcome.stdout}${outcome.stderr}`), []);
    });

    test('every profile renders to objects Kubernetes accepts the shape of', async () => {
      for (const profile of good) {
        const rendered = await render(chart, profile);
        for (const manifest of rendered.manifests) {
          assert.ok(manifest.apiVersion && manifest.kind && manifest.metadata.name, `${profile}: an object without apiVersion, kind or name`);
          assert.ok(manifest.metadata.name.length <= 63, `${profile}: ${manifest.kind} ${manifest.metadata.name} is longer than 63 characters`);
          assert.equal(manifest.metadata.labels?.['app.kubernetes.io/instance'], release, `${profile}: ${manifest.kind} ${manifest.metadata.name} lacks the instance label`);
          if (!['ClusterRole', 'ClusterRoleBinding'].includes(manifest.kind)) assert.equal(manifest.metadata.namespace, namespace, `${profile}: ${manifest.kind} ${manifest.metadata.name} namespace`);
        }
      }
    });

    test('every ci/fail-*.yaml fails to render, with the message on its first line', async () => {
      for (const profile of failing) {
        const file = path.join(chartsDir, chart, 'ci', profile);
        const expected = /^# expect: (.+)$/.exec(readFileSync(file, 'utf8').split('\n')[0] ?? '')?.[1];
        assert.ok(expected, `${profile}: the first line must be "# expect: <message>"`);
        const outcome = await helm(templateArgs(chart, [file]));
        assert.notEqual(outcome.code, 0, `${profile} rendered, but should fail with: ${expected}`);
        assert.ok(outcome.stderr.includes(expected.trim()), `${profile}: expected "${expected}" in:\n${outcome.stderr}`);
      }
    });

    test('values.yaml, values.schema.json and the README table list the same values, each commented', () => {
      const dir = path.join(chartsDir, chart);
      const valuesText = readFileSync(path.join(dir, 'values.yaml'), 'utf8');
      const values = load(valuesText) as Record<string, unknown>;
      const schema = JSON.parse(readFileSync(path.join(dir, 'values.schema.json'), 'utf8')) as SchemaNode;
      const fromSchema = schemaKeys(schema);
      const defaults = valueDefaults(values, new Set(fromSchema));
      assert.deepEqual([...defaults.keys()].sort(), fromSchema, 'values.yaml and values.schema.json list different values');
      const rows = readmeRows(readFileSync(path.join(dir, 'README.md'), 'utf8'));
      assert.deepEqual([...rows.keys()].sort(), fromSchema, 'the README table and values.yaml list different values');
      for (const [key, value] of defaults) assert.equal(rows.get(key), JSON.stringify(value), `README: the default of ${key}`);
      assert.deepEqual(uncommentedKeys(valuesText, new Set(fromSchema)), [], 'values without a comment above them in values.yaml');
    });

    test('the env names the chart sets are written in the envNames template alone', () => {
      const problems: string[] = [];
      const templatesDir = path.join(chartsDir, chart, 'templates');
      for (const name of readdirSync(templatesDir)) {
        let text = readFileSync(path.join(templatesDir, name), 'utf8');
        text = text.replace(/\{\{-? define "[\w-]+\.envNames" -?\}\}[\s\S]*?\{\{-? end -?\}\}/, '');
        text = text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
        text.split('\n').forEach((line, index) => {
          if (/^\s*#/.test(line) || name === 'NOTES.txt') return;
          for (const match of line.matchAll(/\b(?:OUTPOST|SCALR)_[A-Z_]*[A-Z]\b|\b(?:HTTPS?_PROXY|NO_PROXY|NODE_EXTRA_CA_CERTS)\b/g)) {
            problems.push(`${name}:${index + 1}: ${match[0]}`);
          }
        });
      }
      assert.deepEqual(problems, [], 'env names written outside envNames');
    });
  });
}
