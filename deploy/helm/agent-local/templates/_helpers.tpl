{{/*
Names, labels, the image, and the agent's environment. The names of every
environment variable the chart sets are in "agent-local.envNames" alone.
*/}}

{{- define "agent-local.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name alone when it already holds the chart's name. */}}
{{- define "agent-local.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agent-local.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent-local.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{/* Labels of every object: the chart's own win over commonLabels. */}}
{{- define "agent-local.labels" -}}
{{- $labels := include "agent-local.selectorLabels" . | fromYaml }}
{{- $_ := set $labels "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-") }}
{{- $_ := set $labels "app.kubernetes.io/version" (.Values.image.tag | default .Chart.AppVersion | toString | trunc 63 | trimSuffix "-") }}
{{- $_ := set $labels "app.kubernetes.io/managed-by" .Release.Service }}
{{- $_ := set $labels "app.kubernetes.io/part-of" "outpost" }}
{{- toYaml (merge $labels (.Values.commonLabels | default dict)) }}
{{- end }}

{{/* Labels of the agent pods: the selector's, then commonLabels, then podLabels. */}}
{{- define "agent-local.podLabels" -}}
{{- $labels := include "agent-local.selectorLabels" . | fromYaml }}
{{- toYaml (merge $labels (.Values.commonLabels | default dict) (.Values.podLabels | default dict)) }}
{{- end }}

{{- define "agent-local.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agent-local.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* registry/repository:tag (or @digest); global.imageRegistry wins over image.registry. */}}
{{- define "agent-local.image" -}}
{{- $registry := (.Values.global).imageRegistry | default .Values.image.registry }}
{{- $reference := printf ":%s" (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- if .Values.image.digest }}{{ $reference = printf "@%s" .Values.image.digest }}{{ end }}
{{- if $registry }}{{ printf "%s/%s%s" $registry .Values.image.repository $reference }}{{ else }}{{ printf "%s%s" .Values.image.repository $reference }}{{ end }}
{{- end }}

{{/* The Service of the VCS webhook listener: <fullname>-vcs-webhooks, the full name shortened to keep it within 63 characters. */}}
{{- define "agent-local.vcsWebhooksServiceName" -}}
{{- printf "%s-vcs-webhooks" (include "agent-local.fullname" . | trunc 50 | trimSuffix "-") }}
{{- end }}

{{/* The Secret the chart creates: the token (unless an existing Secret holds it) and the provider mirrors. */}}
{{- define "agent-local.secretName" -}}
{{- include "agent-local.fullname" . }}
{{- end }}

{{- define "agent-local.createSecret" -}}
{{- if or (not .Values.agent.tokenExistingSecret.name) .Values.agent.providerNetworkMirrors }}true{{ end }}
{{- end }}

{{/*
The environment variables the chart sets, by role. This is the one place
their names are written: the agent's settings (docs/configuration.md) and
what the container needs besides. extraEnv may set none of these, nor the
SCALR_* spelling of an OUTPOST_* one.
*/}}
{{- define "agent-local.envNames" -}}
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
vcsWebhookPort: OUTPOST_AGENT_VCS_WEBHOOK_PORT
onStopAction: OUTPOST_AGENT_WORKER_ON_STOP_ACTION
drainTimeout: OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT
graceShutdownTimeout: OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT
memorySoftLimitPercent: OUTPOST_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT
caCert: OUTPOST_AGENT_CA_CERT
engineBuild: OUTPOST_AGENT_ENGINE_BUILD
binaryMirror: OUTPOST_AGENT_BINARY_MIRROR
providerNetworkMirrors: OUTPOST_AGENT_PROVIDER_NETWORK_MIRRORS
httpsProxy: HTTPS_PROXY
httpProxy: HTTP_PROXY
noProxy: NO_PROXY
nodeExtraCaCerts: NODE_EXTRA_CA_CERTS
home: HOME
{{- end }}

{{/* Fails when extraEnv names a variable the chart owns. Call with (dict "env" <list> "where" <value path> "root" $). */}}
{{- define "agent-local.checkExtraEnv" -}}
{{- $owned := dict }}
{{- range $_, $name := include "agent-local.envNames" .root | fromYaml }}
{{- $_ := set $owned $name true }}
{{- if hasPrefix "OUTPOST_" $name }}{{ $_ := set $owned (printf "SCALR_%s" (trimPrefix "OUTPOST_" $name)) true }}{{ end }}
{{- end }}
{{- range .env }}
{{- if hasKey $owned (.name | toString) }}
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
{{- define "agent-local.shutdownEnv" -}}
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

{{/* The volume source of persistence.<which>. Call with (dict "which" "data"|"cache" "root" $). */}}
{{- define "agent-local.volumeSource" -}}
{{- $p := index .root.Values.persistence .which }}
{{- if eq $p.type "emptyDir" }}
emptyDir:
  {{- if $p.emptyDir.sizeLimit }}
  sizeLimit: {{ $p.emptyDir.sizeLimit }}
  {{- else }} {}
  {{- end }}
{{- else if eq $p.type "persistentVolumeClaim" }}
persistentVolumeClaim:
  claimName: {{ $p.persistentVolumeClaim.claimName | default (printf "%s-%s" (include "agent-local.fullname" .root) .which) }}
{{- else if eq $p.type "hostPath" }}
hostPath:
  path: {{ $p.hostPath.path }}
  type: DirectoryOrCreate
{{- end }}
{{- end }}

{{/* Render-time checks of values the schema cannot express. */}}
{{- define "agent-local.validate" -}}
{{- if not (or .Values.agent.token .Values.agent.tokenExistingSecret.name) }}
{{- fail "agent.token or agent.tokenExistingSecret.name is required: the pool token the agents register with (outpost pool token create <pool>)" }}
{{- end }}
{{- if and .Values.agent.token .Values.agent.tokenExistingSecret.name }}
{{- fail "set agent.token or agent.tokenExistingSecret.name, not both" }}
{{- end }}
{{- if and .Values.agent.caBundle.secretName .Values.agent.caBundle.configMapName }}
{{- fail "agent.caBundle: set secretName or configMapName, not both" }}
{{- end }}
{{- if eq (clean .Values.persistence.data.mountPath) (clean .Values.persistence.cache.mountPath) }}
{{- fail (printf "persistence.data.mountPath and persistence.cache.mountPath are both %s: give the cache a directory of its own" (clean .Values.persistence.cache.mountPath)) }}
{{- end }}
{{- $shared := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- if and $shared (ne .Values.persistence.data.type "emptyDir") }}
{{- fail (printf "persistence.data.type %s would give several agents one data directory, which each agent must have to itself (an agent clears what it finds there at start): use emptyDir with replicaCount > 1 or autoscaling, or replicaCount 1" .Values.persistence.data.type) }}
{{- end }}
{{- range $which := list "data" "cache" }}
{{- $p := index $.Values.persistence $which }}
{{- if and $shared (eq $p.type "persistentVolumeClaim") (not $p.persistentVolumeClaim.claimName) (ne $p.persistentVolumeClaim.accessMode "ReadWriteMany") }}
{{- fail (printf "persistence.%s.persistentVolumeClaim.accessMode %s cannot be shared by several replicas on different nodes: use ReadWriteMany, or replicaCount 1 without autoscaling" $which $p.persistentVolumeClaim.accessMode) }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not (or .Values.autoscaling.targetCPUUtilizationPercentage .Values.autoscaling.targetMemoryUtilizationPercentage)) }}
{{- fail "autoscaling needs autoscaling.targetCPUUtilizationPercentage or autoscaling.targetMemoryUtilizationPercentage" }}
{{- end }}
{{- if and .Values.vcs.webhookListener.enabled (eq (int .Values.vcs.webhookListener.port) (int .Values.agent.healthPort)) }}
{{- fail (printf "vcs.webhookListener.port and agent.healthPort are both %d: the webhook listener needs a port of its own" (int .Values.agent.healthPort)) }}
{{- end }}
{{- include "agent-local.checkExtraEnv" (dict "env" .Values.agent.extraEnv "where" "agent.extraEnv" "root" .) }}
{{- end }}
