{{/*
The sidecar for your own pod specs. With model-sidecar as a dependency of your chart
(values under `model-sidecar:`), in your Deployment's pod template:

  metadata:
    labels: {{- include "model-sidecar.podLabels" $ms | nindent 8 }}
    annotations: {{- include "model-sidecar.podAnnotations" $ms | nindent 8 }}
  spec:
    terminationGracePeriodSeconds: {{ include "model-sidecar.terminationGracePeriodSeconds" $ms }}
    initContainers: {{- include "model-sidecar.initContainers" $ms | nindent 8 }}
    containers:
      - name: app
        env: {{- include "model-sidecar.appEnv" $ms | nindent 10 }}
      {{- include "model-sidecar.containers" $ms | nindent 6 }}
    volumes: {{- include "model-sidecar.volumes" $ms | nindent 8 }}

where $ms := dict "Values" (index .Values "model-sidecar") "Release" .Release
*/}}

{{/* The sidecar's config file: the user's config as given (listen addresses come as flags). */}}
{{- define "model-sidecar.configYaml" -}}
{{- if .Values.config -}}
{{- toYaml .Values.config -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/* The sidecar container (a mapping). With sidecar.native it carries restartPolicy: Always. */}}
{{- define "model-sidecar.container" -}}
{{- $s := .Values.sidecar -}}
{{- if and $s.native .Capabilities -}}
{{- if semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version -}}
{{- fail (printf "sidecar.native needs Kubernetes >= 1.29 (native sidecars); this cluster is %s: set sidecar.native=false" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- end -}}
name: model-sidecar
image: {{ include "model-sidecar.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- if $s.native }}
restartPolicy: Always
{{- end }}
args:
  - serve
  - --config
  - /etc/model-sidecar/config.yaml
  - --listen
  - {{ printf "127.0.0.1:%d" (int $s.proxyPort) | quote }}
  - --admin-listen
  - {{ printf "0.0.0.0:%d" (int $s.adminPort) | quote }}
ports:
  - name: sidecar-admin
    containerPort: {{ $s.adminPort }}
    protocol: TCP
env:
  - name: PYTHONDONTWRITEBYTECODE
    value: "1"
  - name: PYTHONUNBUFFERED
    value: "1"
  {{- if include "model-sidecar.adminTokenSecretName" . }}
  - name: MODEL_SIDECAR_ADMIN_TOKEN_FILE
    value: {{ include "model-sidecar.adminTokenFile" . | quote }}
  {{- end }}
  {{- with $s.env }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $s.startupProbe }}
startupProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.livenessProbe }}
livenessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.readinessProbe }}
readinessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $s.securityContext | nindent 2 }}
volumeMounts:
  - name: model-sidecar-config
    mountPath: /etc/model-sidecar
    readOnly: true
{{- end -}}

{{/* A list holding the sidecar when it is native (for initContainers), else empty. */}}
{{- define "model-sidecar.initContainers" -}}
{{- if .Values.sidecar.native -}}
- {{ include "model-sidecar.container" . | nindent 2 | trim }}
{{- end }}
{{- end -}}

{{/* A list holding the sidecar when it is classic (append to containers), else empty. */}}
{{- define "model-sidecar.containers" -}}
{{- if not .Values.sidecar.native -}}
- {{ include "model-sidecar.container" . | nindent 2 | trim }}
{{- end }}
{{- end -}}

{{/* The Secret named by sidecar.adminTokenSecret.name ("" when none). */}}
{{- define "model-sidecar.adminTokenSecretName" -}}
{{- (.Values.sidecar.adminTokenSecret | default dict).name | default "" -}}
{{- end -}}

{{/* Where the sidecar reads its admin token: a file of the config volume. */}}
{{- define "model-sidecar.adminTokenFile" -}}
/etc/model-sidecar/admin-token
{{- end -}}

{{/*
The config volume, from (list $ctx SOURCE_KIND SOURCE): a configMap or downwardAPI volume
holding config.yaml; with sidecar.adminTokenSecret.name, a projected volume of that source and
the Secret's key as admin-token. One volume, so the injector (which adds exactly one) and
charts that include model-sidecar.volumes carry the token without a change.
*/}}
{{- define "model-sidecar.configVolumeFrom" -}}
{{- $ctx := index . 0 -}}
{{- $kind := index . 1 -}}
{{- $source := index . 2 -}}
{{- $secret := include "model-sidecar.adminTokenSecretName" $ctx -}}
name: model-sidecar-config
{{- if $secret }}
projected:
  sources:
    - {{ $kind }}:
        {{- toYaml $source | nindent 8 }}
    - secret:
        name: {{ $secret }}
        items:
          - key: {{ $ctx.Values.sidecar.adminTokenSecret.key | quote }}
            path: {{ include "model-sidecar.adminTokenFile" $ctx | base }}
{{- else }}
{{ $kind }}:
  {{- toYaml $source | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The config volume: the release's ConfigMap (and the admin token, when set). */}}
{{- define "model-sidecar.volume" -}}
{{- include "model-sidecar.configVolumeFrom" (list . "configMap" (dict "name" (include "model-sidecar.configMapName" .))) -}}
{{- end -}}

{{- define "model-sidecar.volumes" -}}
- {{ include "model-sidecar.volume" . | nindent 2 | trim }}
{{- end -}}

{{/* Env for app containers: the SDKs' base URLs pointing at the sidecar on loopback. */}}
{{- define "model-sidecar.appEnv" -}}
- name: OPENAI_BASE_URL
  value: {{ printf "http://127.0.0.1:%d/v1" (int .Values.sidecar.proxyPort) | quote }}
- name: ANTHROPIC_BASE_URL
  value: {{ printf "http://127.0.0.1:%d" (int .Values.sidecar.proxyPort) | quote }}
{{- end -}}

{{/* Pod labels: what the PodMonitor selects. */}}
{{- define "model-sidecar.podLabels" -}}
model-sidecar.io/sidecar: "true"
{{- end -}}

{{/* Pod annotations: a config checksum, so a config change rolls the pods. */}}
{{- define "model-sidecar.podAnnotations" -}}
checksum/model-sidecar-config: {{ include "model-sidecar.configYaml" . | sha256sum }}
{{- end -}}

{{/* Longer than the sidecar's drain (limits.shutdown_grace_seconds, default 30) plus a margin. */}}
{{- define "model-sidecar.terminationGracePeriodSeconds" -}}
{{- $grace := dig "limits" "shutdown_grace_seconds" 30 (.Values.config | default dict) -}}
{{- add (int (ceil $grace)) (int .Values.sidecar.terminationGraceMarginSeconds) -}}
{{- end -}}
