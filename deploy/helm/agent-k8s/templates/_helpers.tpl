{{/*
Names, labels, images, and the agents' environment. The names of every
environment variable the chart sets are in "agent-k8s.envNames" alone.
*/}}

{{- define "agent-k8s.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name alone when it already holds the chart's name. */}}
{{- define "agent-k8s.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of a component's objects: <fullname>-<component> (52 + 11 characters at most). */}}
{{- define "agent-k8s.componentName" -}}
{{- printf "%s-%s" (include "agent-k8s.fullname" .root) .component }}
{{- end }}

{{/* Selector labels of a component (controller, worker, job). Call with (dict "root" $ "component" …). */}}
{{- define "agent-k8s.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent-k8s.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of every object: the chart's own win over commonLabels. Call with (dict "root" $ "component" …). */}}
{{- define "agent-k8s.labels" -}}
{{- $root := .root }}
{{- $labels := include "agent-k8s.selectorLabels" . | fromYaml }}
{{- $_ := set $labels "helm.sh/chart" (printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-") }}
{{- $_ := set $labels "app.kubernetes.io/version" ($root.Values.image.tag | default $root.Chart.AppVersion | toString | trunc 63 | trimSuffix "-") }}
{{- $_ := set $labels "app.kubernetes.io/managed-by" $root.Release.Service }}
{{- $_ := set $labels "app.kubernetes.io/part-of" "outpost" }}
{{- toYaml (merge $labels ($root.Values.commonLabels | default dict)) }}
{{- end }}

{{/* Labels of a component's pods: the selector's, then commonLabels, then the component's podLabels. */}}
{{- define "agent-k8s.podLabels" -}}
{{- $labels := include "agent-k8s.selectorLabels" . | fromYaml }}
{{- toYaml (merge $labels (.root.Values.commonLabels | default dict) (.podLabels | default dict)) }}
{{- end }}

{{/*
Labels of the job pods. outpost.dev/instance is the release's full name
(OUTPOST_AGENT_KUBERNETES_INSTANCE), so the controllers and workers of one
release never take another release's job pods.
*/}}
{{- define "agent-k8s.jobSelectorLabels" -}}
{{- include "agent-k8s.selectorLabels" (dict "root" . "component" "job") }}
outpost.dev/instance: {{ include "agent-k8s.fullname" . }}
{{- end }}

{{- define "agent-k8s.serviceAccountName" -}}
{{- $sa := index .root.Values .component "serviceAccount" }}
{{- if $sa.create }}
{{- default (include "agent-k8s.componentName" (dict "root" .root "component" (ternary "job" .component (eq .component "task")))) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* An image reference. Call with (dict "image" <image values> "fallback" <image values or empty dict> "root" $). */}}
{{- define "agent-k8s.imageRef" -}}
{{- $image := .image }}
{{- $fallback := .fallback | default dict }}
{{- $registry := (.root.Values.global).imageRegistry | default $image.registry | default $fallback.registry }}
{{- $repository := $image.repository | default $fallback.repository }}
{{- $reference := printf ":%s" ($image.tag | default $fallback.tag | default .root.Chart.AppVersion | toString) }}
{{- $digest := $image.digest | default $fallback.digest }}
{{- if $digest }}{{ $reference = printf "@%s" $digest }}{{ end }}
{{- if $registry }}{{ printf "%s/%s%s" $registry $repository $reference }}{{ else }}{{ printf "%s%s" $repository $reference }}{{ end }}
{{- end }}

{{- define "agent-k8s.image" -}}
{{- include "agent-k8s.imageRef" (dict "image" .Values.image "fallback" dict "root" .) }}
{{- end }}

{{/* The job image: task.image, each part falling back to the agent image's while task.image.repository is empty. */}}
{{- define "agent-k8s.taskImage" -}}
{{- if .Values.task.image.repository }}
{{- include "agent-k8s.imageRef" (dict "image" .Values.task.image "fallback" (dict "registry" .Values.image.registry) "root" .) }}
{{- else }}
{{- include "agent-k8s.imageRef" (dict "image" .Values.task.image "fallback" .Values.image "root" .) }}
{{- end }}
{{- end }}

{{- define "agent-k8s.secretName" -}}
{{- include "agent-k8s.fullname" . }}
{{- end }}

{{- define "agent-k8s.createSecret" -}}
{{- if or (not .Values.agent.tokenExistingSecret.name) .Values.agent.providerNetworkMirrors }}true{{ end }}
{{- end }}

{{/*
The environment variables the chart sets, by role. This is the one place
their names are written: the agent's settings (docs/configuration.md), the
kubernetes driver's, and what the containers need besides. No extraEnv may
set any of these, nor the SCALR_* spelling of an OUTPOST_* one.
*/}}
{{- define "agent-k8s.envNames" -}}
url: OUTPOST_URL
token: OUTPOST_AGENT_TOKEN
name: OUTPOST_AGENT_NAME
driver: OUTPOST_AGENT_DRIVER
concurrency: OUTPOST_AGENT_CONCURRENCY
dataDir: OUTPOST_AGENT_DATA_DIR
cacheDir: OUTPOST_AGENT_CACHE_DIR
logFormat: OUTPOST_AGENT_LOG_FORMAT
logLevel: OUTPOST_AGENT_LOG_LEVEL
healthPort: OUTPOST_AGENT_HEALTH_PORT
onStopAction: OUTPOST_AGENT_WORKER_ON_STOP_ACTION
drainTimeout: OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT
graceShutdownTimeout: OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT
memorySoftLimitPercent: OUTPOST_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT
memoryLimitMb: OUTPOST_AGENT_MEMORY_LIMIT_MB
caCert: OUTPOST_AGENT_CA_CERT
engineBuild: OUTPOST_AGENT_ENGINE_BUILD
binaryMirror: OUTPOST_AGENT_BINARY_MIRROR
providerNetworkMirrors: OUTPOST_AGENT_PROVIDER_NETWORK_MIRRORS
mode: OUTPOST_AGENT_KUBERNETES_MODE
podTemplate: OUTPOST_AGENT_KUBERNETES_POD_TEMPLATE
namespace: OUTPOST_AGENT_KUBERNETES_NAMESPACE
instance: OUTPOST_AGENT_KUBERNETES_INSTANCE
nodeDataDir: OUTPOST_AGENT_KUBERNETES_NODE_DATA_DIR
nodeCacheDir: OUTPOST_AGENT_KUBERNETES_NODE_CACHE_DIR
schedulingTimeout: OUTPOST_AGENT_KUBERNETES_SCHEDULING_TIMEOUT
podTtl: OUTPOST_AGENT_KUBERNETES_POD_TTL
nodeName: OUTPOST_AGENT_KUBERNETES_NODE_NAME
startupTimeout: OUTPOST_AGENT_KUBERNETES_STARTUP_TIMEOUT
httpsProxy: HTTPS_PROXY
httpProxy: HTTP_PROXY
noProxy: NO_PROXY
nodeExtraCaCerts: NODE_EXTRA_CA_CERTS
home: HOME
{{- end }}

{{/*
Fails when an extraEnv list names a variable the chart owns. Call with
(dict "env" <list> "where" <value path> "root" $ "jobPrefix" <bool>): with
jobPrefix, the OUTPOST_JOB_* settings the controller gives each job are
refused too.
*/}}
{{- define "agent-k8s.checkExtraEnv" -}}
{{- $owned := dict }}
{{- range $_, $name := include "agent-k8s.envNames" .root | fromYaml }}
{{- $_ := set $owned $name true }}
{{- if hasPrefix "OUTPOST_" $name }}{{ $_ := set $owned (printf "SCALR_%s" (trimPrefix "OUTPOST_" $name)) true }}{{ end }}
{{- end }}
{{- range .env }}
{{- if or (hasKey $owned (.name | toString)) (and $.jobPrefix (hasPrefix "OUTPOST_JOB_" (.name | toString))) }}
{{- fail (printf "%s sets %s, which the chart sets itself: use the chart's value for it instead (see the chart's README)" $.where .name) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The agent's stop settings derived from the pod's terminationGracePeriodSeconds
(T), as env entries. Call with (dict "mode" … "seconds" … "where" <value path prefix> "names" <envNames>).
  drain: drain timeout T - 70 s, then 60 s of grace, 10 s to report (T >= 120)
  grace: grace timeout T - 10 s, 10 s to report (T >= 30)
  force: 10 s to report (T >= 10)
*/}}
{{- define "agent-k8s.shutdownEnv" -}}
{{- $t := int .seconds }}
{{- $n := .names }}
{{- if eq .mode "drain" }}
{{- if lt $t 120 }}
{{- fail (printf "%sshutdownMode drain needs %sterminationGracePeriodSeconds >= 120 (the agent drains for T - 70 s, then gives interrupted jobs 60 s and itself 10 s to report them); got %d" .where .where $t) }}
{{- end }}
- name: {{ $n.onStopAction }}
  value: drain
- name: {{ $n.drainTimeout }}
  value: {{ printf "%ds" (sub $t 70) | quote }}
- name: {{ $n.graceShutdownTimeout }}
  value: "60s"
{{- else if eq .mode "grace" }}
{{- if lt $t 30 }}
{{- fail (printf "%sshutdownMode grace needs %sterminationGracePeriodSeconds >= 30 (the agent gives interrupted jobs T - 10 s, at least 20 s, and itself 10 s to report them); got %d" .where .where $t) }}
{{- end }}
- name: {{ $n.onStopAction }}
  value: grace
- name: {{ $n.graceShutdownTimeout }}
  value: {{ printf "%ds" (sub $t 10) | quote }}
{{- else if eq .mode "force" }}
{{- if lt $t 10 }}
{{- fail (printf "%sshutdownMode force needs %sterminationGracePeriodSeconds >= 10 (the agent kills its jobs and needs 10 s to report them); got %d" .where .where $t) }}
{{- end }}
- name: {{ $n.onStopAction }}
  value: force
{{- else }}
{{- fail (printf "%sshutdownMode must be drain, grace or force; got %q" .where (toString .mode)) }}
{{- end }}
{{- end }}

{{/* The pod annotation that restarts pods when the token changes (an existing Secret is read with lookup, which helm template cannot do). */}}
{{- define "agent-k8s.checksumAnnotations" -}}
{{- if .Values.agent.tokenExistingSecret.name }}
{{- $secret := lookup "v1" "Secret" .Release.Namespace .Values.agent.tokenExistingSecret.name }}
checksum/agent-token: {{ (index (($secret).data | default dict) .Values.agent.tokenExistingSecret.key) | default "" | sha256sum }}
{{- else }}
checksum/agent-token: {{ .Values.agent.token | sha256sum }}
{{- end }}
{{- with .Values.agent.providerNetworkMirrors }}
checksum/provider-network-mirrors: {{ toJson . | sha256sum }}
{{- end }}
{{- end }}

{{- define "agent-k8s.metricsAnnotations" -}}
{{- if .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.agent.healthPort | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/*
Environment of both the controller and the workers. Call with
(dict "root" $ "component" "controller"|"worker" "dataDir" … "cacheDir" …);
the caller adds the component's own settings.
*/}}
{{- define "agent-k8s.agentEnv" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $n := include "agent-k8s.envNames" $root | fromYaml }}
{{- $c := index $v .component }}
{{- with $v.agent.url }}
- name: {{ $n.url }}
  value: {{ . | quote }}
{{- end }}
- name: {{ $n.token }}
  valueFrom:
    secretKeyRef:
      {{- if $v.agent.tokenExistingSecret.name }}
      name: {{ $v.agent.tokenExistingSecret.name }}
      key: {{ $v.agent.tokenExistingSecret.key }}
      {{- else }}
      name: {{ include "agent-k8s.secretName" $root }}
      key: token
      {{- end }}
- name: {{ $n.name }}
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: {{ $n.driver }}
  value: kubernetes
- name: {{ $n.mode }}
  value: {{ .component }}
- name: {{ $n.namespace }}
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: {{ $n.instance }}
  value: {{ include "agent-k8s.fullname" $root | quote }}
- name: {{ $n.dataDir }}
  value: {{ .dataDir | quote }}
- name: {{ $n.cacheDir }}
  value: {{ .cacheDir | quote }}
- name: {{ $n.logFormat }}
  value: json
- name: {{ $n.logLevel }}
  value: {{ $v.agent.logLevel | quote }}
- name: {{ $n.healthPort }}
  value: {{ $v.agent.healthPort | quote }}
{{- with include "agent-k8s.shutdownEnv" (dict "mode" $c.shutdownMode "seconds" $c.terminationGracePeriodSeconds "where" (printf "%s." .component) "names" $n) | trim }}{{ . | nindent 0 }}{{- end }}
- name: {{ $n.memorySoftLimitPercent }}
  value: {{ $v.task.memorySoftLimitPercent | quote }}
# No Go toolchain in the image: a version that cannot be downloaded fails
# the job instead of being built.
- name: {{ $n.engineBuild }}
  value: "off"
{{- with $v.agent.binaryMirror }}
- name: {{ $n.binaryMirror }}
  value: {{ . | quote }}
{{- end }}
{{- if $v.agent.providerNetworkMirrors }}
- name: {{ $n.providerNetworkMirrors }}
  valueFrom:
    secretKeyRef:
      name: {{ include "agent-k8s.secretName" $root }}
      key: provider-network-mirrors
{{- end }}
{{- if or $v.agent.caBundle.secretName $v.agent.caBundle.configMapName }}
- name: {{ $n.caCert }}
  value: /etc/outpost-ca/ca.crt
- name: {{ $n.nodeExtraCaCerts }}
  value: /etc/outpost-ca/ca.crt
{{- end }}
{{- include "agent-k8s.proxyEnv" $root }}
# The image's home directory is read-only.
- name: {{ $n.home }}
  value: /tmp
{{- end }}

{{- define "agent-k8s.proxyEnv" -}}
{{- $n := include "agent-k8s.envNames" . | fromYaml }}
{{- with .Values.proxy.https }}
- name: {{ $n.httpsProxy }}
  value: {{ . | quote }}
{{- end }}
{{- with .Values.proxy.http }}
- name: {{ $n.httpProxy }}
  value: {{ . | quote }}
{{- end }}
{{- with .Values.proxy.noProxy }}
- name: {{ $n.noProxy }}
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* The CA bundle volume, when one is configured. */}}
{{- define "agent-k8s.caBundleVolume" -}}
{{- with .Values.agent.caBundle.secretName }}
- name: ca-bundle
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.agent.caBundle.key }}
        path: ca.crt
{{- end }}
{{- with .Values.agent.caBundle.configMapName }}
- name: ca-bundle
  configMap:
    name: {{ . }}
    items:
      - key: {{ $.Values.agent.caBundle.key }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "agent-k8s.caBundleMount" -}}
{{- if or .Values.agent.caBundle.secretName .Values.agent.caBundle.configMapName }}
- name: ca-bundle
  mountPath: /etc/outpost-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "agent-k8s.cacheClaimName" -}}
{{- .Values.persistence.cache.persistentVolumeClaim.claimName | default (include "agent-k8s.componentName" (dict "root" . "component" "cache")) }}
{{- end }}

{{/* The worker's volumes for the node's directories: outpost-data and outpost-cache (job pods get theirs from the controller). */}}
{{- define "agent-k8s.sharedVolumes" -}}
{{- $cache := .Values.persistence.cache }}
- name: outpost-data
  hostPath:
    path: {{ .Values.persistence.data.path }}
    type: DirectoryOrCreate
- name: outpost-cache
  {{- if eq $cache.type "hostPath" }}
  hostPath:
    path: {{ $cache.path }}
    type: DirectoryOrCreate
  {{- else }}
  persistentVolumeClaim:
    claimName: {{ include "agent-k8s.cacheClaimName" . }}
  {{- end }}
{{- end }}

{{- define "agent-k8s.sharedVolumeMounts" -}}
{{- $cache := .Values.persistence.cache }}
- name: outpost-data
  mountPath: {{ .Values.persistence.data.path }}
- name: outpost-cache
  mountPath: {{ $cache.path }}
  {{- if and (eq $cache.type "persistentVolumeClaim") $cache.persistentVolumeClaim.subPath }}
  subPath: {{ $cache.persistentVolumeClaim.subPath }}
  {{- end }}
{{- end }}

{{/* Render-time checks of values the schema cannot express. */}}
{{- define "agent-k8s.validate" -}}
{{- if not (or .Values.agent.token .Values.agent.tokenExistingSecret.name) }}
{{- fail "agent.token or agent.tokenExistingSecret.name is required: the pool token the agents register with (outpost pool token create <pool>)" }}
{{- end }}
{{- if and .Values.agent.token .Values.agent.tokenExistingSecret.name }}
{{- fail "set agent.token or agent.tokenExistingSecret.name, not both" }}
{{- end }}
{{- if and .Values.agent.caBundle.secretName .Values.agent.caBundle.configMapName }}
{{- fail "agent.caBundle: set secretName or configMapName, not both" }}
{{- end }}
{{- $cache := .Values.persistence.cache }}
{{- if and (eq $cache.type "persistentVolumeClaim") (not $cache.persistentVolumeClaim.claimName) (ne $cache.persistentVolumeClaim.accessMode "ReadWriteMany") }}
{{- fail (printf "persistence.cache.persistentVolumeClaim.accessMode must be ReadWriteMany: the workers and job pods of every node mount the cache at once; got %s" $cache.persistentVolumeClaim.accessMode) }}
{{- end }}
{{- if eq (clean .Values.persistence.data.path) (clean $cache.path) }}
{{- fail (printf "persistence.data.path and persistence.cache.path are both %s: give the cache a directory of its own" (clean $cache.path)) }}
{{- end }}
{{- include "agent-k8s.checkExtraEnv" (dict "env" .Values.agent.extraEnv "where" "agent.extraEnv" "root" . "jobPrefix" false) }}
{{- include "agent-k8s.checkExtraEnv" (dict "env" .Values.controller.extraEnv "where" "controller.extraEnv" "root" . "jobPrefix" false) }}
{{- include "agent-k8s.checkExtraEnv" (dict "env" .Values.worker.extraEnv "where" "worker.extraEnv" "root" . "jobPrefix" false) }}
{{- include "agent-k8s.checkExtraEnv" (dict "env" .Values.task.extraEnv "where" "task.extraEnv" "root" . "jobPrefix" true) }}
{{- end }}

{{/* The worker's ClusterRole (and binding): cluster-scoped, so the namespace is part of the name. */}}
{{- define "agent-k8s.nodesRoleName" -}}
{{- printf "%s-%s-nodes" .Release.Namespace (include "agent-k8s.componentName" (dict "root" . "component" "worker")) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A memory quantity (4Gi, 512Mi, 2G, 1.5Gi, bytes) in whole MiB: the job
container's limit as the worker's OUTPOST_AGENT_MEMORY_LIMIT_MB, so its
memory guard interrupts a job at the soft limit before the kernel kills it.
*/}}
{{- define "agent-k8s.mebibytes" -}}
{{- $q := . | toString -}}
{{- $units := list (list "Ki" 1024.0) (list "Mi" 1048576.0) (list "Gi" 1073741824.0) (list "Ti" 1099511627776.0) (list "k" 1000.0) (list "M" 1000000.0) (list "G" 1000000000.0) (list "T" 1000000000000.0) -}}
{{- $bytes := 0.0 -}}
{{- $matched := false -}}
{{- range $units -}}
{{- if and (not $matched) (hasSuffix (index . 0) $q) -}}
{{- $bytes = mulf (trimSuffix (index . 0) $q | float64) (index . 1) -}}
{{- $matched = true -}}
{{- end -}}
{{- end -}}
{{- if not $matched }}{{ $bytes = $q | float64 }}{{ end -}}
{{- divf $bytes 1048576.0 | floor | int -}}
{{- end }}
