{{- define "rag.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rag.fullname" -}}
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

{{- define "rag.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "rag.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: include "rag.selectorLabels" (list . "api") */}}
{{- define "rag.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "rag.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "rag.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "rag.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rag.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rag.secretName" -}}
{{- .Values.existingSecret | default (include "rag.fullname" .) }}
{{- end }}

{{- define "rag.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "rag.fullname" .)) }}
{{- end }}

{{/* Qdrant's URL: the bundled chart's Service (named as that chart names it), or qdrant.url. */}}
{{- define "rag.qdrantUrl" -}}
{{- if .Values.qdrant.enabled }}
{{- $name := default "qdrant" .Values.qdrant.nameOverride }}
{{- $service := "" }}
{{- if .Values.qdrant.fullnameOverride }}
{{- $service = .Values.qdrant.fullnameOverride }}
{{- else if contains $name .Release.Name }}
{{- $service = .Release.Name }}
{{- else }}
{{- $service = printf "%s-%s" .Release.Name $name }}
{{- end }}
{{- printf "http://%s:6333" ($service | trunc 63 | trimSuffix "-") }}
{{- else }}
{{- required "qdrant.url is required when qdrant.enabled is false" .Values.qdrant.url }}
{{- end }}
{{- end }}

{{/* What the api and the workers share: image, settings, secrets, volumes. */}}
{{- define "rag.podCommon" -}}
serviceAccountName: {{ include "rag.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
volumes:
  - name: data
    persistentVolumeClaim:
      claimName: {{ include "rag.claimName" . }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit }}
  {{- if .Values.catalog }}
  - name: catalog
    configMap:
      name: {{ include "rag.fullname" . }}-catalog
      items:
        - key: catalog.toml
          path: catalog.toml
  {{- end }}
{{- end }}

{{- define "rag.containerCommon" -}}
image: {{ include "rag.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
envFrom:
  - configMapRef:
      name: {{ include "rag.fullname" . }}
  - secretRef:
      name: {{ include "rag.secretName" . }}
volumeMounts:
  - name: data
    mountPath: /data
  - name: tmp
    mountPath: /tmp
  {{- if .Values.catalog }}
  - name: catalog
    mountPath: /etc/rag
    readOnly: true
  {{- end }}
{{- end }}
