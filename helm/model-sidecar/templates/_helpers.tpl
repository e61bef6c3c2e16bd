{{/*
Names and labels. Every helper here takes a context with .Values and .Release only (no
.Chart), so the named templates also work from a chart that depends on this one:
  include "model-sidecar.container" (dict "Values" (index .Values "model-sidecar") "Release" .Release)
*/}}

{{- define "model-sidecar.name" -}}
{{- default "model-sidecar" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "model-sidecar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "model-sidecar.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "model-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "model-sidecar.labels" -}}
{{ include "model-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | default "Helm" }}
app.kubernetes.io/part-of: model-sidecar
{{- end -}}

{{- define "model-sidecar.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{- define "model-sidecar.configMapName" -}}
{{- printf "%s-config" (include "model-sidecar.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "model-sidecar.webhookName" -}}
{{- printf "%s-injector" (include "model-sidecar.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
