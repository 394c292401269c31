{{/* The chart's full name: the release name, plus the chart name unless it already has it. */}}
{{- define "tuner.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "tuner.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels that select the operator's pods. */}}
{{- define "tuner.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "tuner.serviceAccountName" -}}
{{- default (include "tuner.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The ConfigMap holding the default rules: the user's, or the chart's own. */}}
{{- define "tuner.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "tuner.fullname" .)) .Values.rules.existingConfigMap -}}
{{- end -}}

{{/* The environment variable carrying a channel's secret: TUNER_CHANNEL_<NAME>_SECRET. */}}
{{- define "tuner.channelSecretEnv" -}}
{{- printf "TUNER_CHANNEL_%s_SECRET" (. | upper | replace "-" "_") -}}
{{- end -}}

{{/* The tuner.yaml option naming the variable of a channel type's secret. */}}
{{- define "tuner.channelSecretOption" -}}
{{- get (dict "slack" "webhook_url_env" "webhook" "url_env" "email" "password_env") . -}}
{{- end -}}
