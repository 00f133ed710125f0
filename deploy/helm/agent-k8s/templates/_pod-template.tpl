{{/*
The job pod as the controller starts from (the ConfigMap's pod-template.yaml).
The controller adds what each job needs: the container's command and the
job's environment, its own labels, and the node directories (hostPath
volumes named outpost-*: the job's directory, the runtime and the cache, at
the paths the node's worker uses). With a ReadWriteMany cache, which is no
directory of the node, the template mounts the claim itself (volume
shared-cache, read-only, at the cache path).
*/}}
{{- define "agent-k8s.podTemplate" -}}
{{- $task := .Values.task }}
{{- $n := include "agent-k8s.envNames" . | fromYaml }}
{{- $labels := merge (include "agent-k8s.jobSelectorLabels" . | fromYaml) (.Values.commonLabels | default dict) ($task.podLabels | default dict) }}
apiVersion: v1
kind: Pod
metadata:
  labels:
    {{- toYaml $labels | nindent 4 }}
  {{- with $task.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "agent-k8s.serviceAccountName" (dict "root" . "component" "task") }}
  # A job never calls the Kubernetes API.
  automountServiceAccountToken: false
  enableServiceLinks: false
  restartPolicy: Never
  terminationGracePeriodSeconds: {{ $task.terminationGracePeriodSeconds }}
  {{- with $task.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with concat (.Values.imagePullSecrets | default list) ($task.imagePullSecrets | default list) }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $task.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($task.nodeSelector | default .Values.worker.nodeSelector) }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($task.tolerations | default .Values.worker.tolerations) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $task.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $task.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: job
      image: {{ include "agent-k8s.taskImage" . }}
      imagePullPolicy: {{ $task.image.pullPolicy }}
      env:
        {{- with include "agent-k8s.proxyEnv" . | trim }}{{ . | nindent 8 }}{{- end }}
        {{- if or .Values.agent.caBundle.secretName .Values.agent.caBundle.configMapName }}
        - name: {{ $n.nodeExtraCaCerts }}
          value: /etc/outpost-ca/ca.crt
        {{- end }}
        # The image's home directory is read-only; the engine writes here.
        - name: {{ $n.home }}
          value: /tmp
        {{- with $task.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $task.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $task.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $task.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if eq .Values.persistence.cache.type "persistentVolumeClaim" }}
        - name: shared-cache
          mountPath: {{ .Values.persistence.cache.path }}
          readOnly: true
          {{- with .Values.persistence.cache.persistentVolumeClaim.subPath }}
          subPath: {{ . }}
          {{- end }}
        {{- end }}
        {{- with include "agent-k8s.caBundleMount" . | trim }}{{ . | nindent 8 }}{{- end }}
        {{- with $task.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- with $task.sidecars }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- if eq .Values.persistence.cache.type "persistentVolumeClaim" }}
    - name: shared-cache
      persistentVolumeClaim:
        claimName: {{ include "agent-k8s.cacheClaimName" . }}
        readOnly: true
    {{- end }}
    {{- with include "agent-k8s.caBundleVolume" . | trim }}{{ . | nindent 4 }}{{- end }}
    {{- with $task.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
