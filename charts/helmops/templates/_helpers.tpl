{{- define "helmops.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "helmops.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "helmops.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "helmops.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "helmops.networkArgs" -}}
- --allow-private-networks={{ .Values.network.allowPrivateNetworks }}
- --allow-loopback={{ .Values.network.allowLoopback }}
{{- with .Values.network.denyAddressRanges }}
- --deny-address-ranges={{ join "," . }}
{{- end }}
{{- end -}}

{{- /* The Secret the controller writes the local agent's credential into, and the agent reads. */ -}}
{{- define "helmops.localAgentCredential" -}}
{{ .Release.Namespace }}/{{ include "helmops.fullname" . }}-agent-local-credential
{{- end -}}
