{{/* The chart name (nameOverride wins). */}}
{{- define "imagepipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* RELEASE-imagepipe, or RELEASE when it already contains the chart name; 63 characters at most. */}}
{{- define "imagepipe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The operator's objects (Deployment, Service, RBAC): FULLNAME-operator. */}}
{{- define "imagepipe.operatorName" -}}
{{- printf "%s-operator" (include "imagepipe.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "imagepipe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: immutable on Deployments, so never the version. */}}
{{- define "imagepipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imagepipe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object of the chart (docs/design.md: part-of imagepipe, which the PodMonitor selects). */}}
{{- define "imagepipe.labels" -}}
helm.sh/chart: {{ include "imagepipe.chart" . }}
{{ include "imagepipe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: imagepipe
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "imagepipe.operatorSelectorLabels" -}}
{{ include "imagepipe.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "imagepipe.operatorLabels" -}}
{{ include "imagepipe.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "imagepipe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "imagepipe.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "imagepipe.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The namespaces the operator watches; empty: the whole cluster. */}}
{{- define "imagepipe.clusterwide" -}}
{{- if .Values.operator.clusterWide -}}true{{- end -}}
{{- end -}}

{{/* The namespaces watched when not cluster-wide: the list given, else the release's (JSON). */}}
{{- define "imagepipe.watchNamespaces" -}}
{{- if and .Values.operator.clusterWide .Values.operator.watchNamespaces -}}
{{- fail "operator.clusterWide and operator.watchNamespaces exclude each other" -}}
{{- end -}}
{{- toJson (default (list .Release.Namespace) .Values.operator.watchNamespaces) -}}
{{- end -}}

{{/* The operator's liveness endpoint (kopf), also what `helm test` checks. */}}
{{- define "imagepipe.livenessUrl" -}}
{{- printf "http://0.0.0.0:%d/healthz" (int .Values.operator.healthPort) -}}
{{- end -}}
