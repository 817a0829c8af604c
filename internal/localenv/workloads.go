package localenv

// Templates of charts that run Jobs on the simulated nodes (see StartNodes), shared by the
// local environment's demo charts and the tests.

// HookJob is a Job named <release>-migrate, run as a pre-install and post-upgrade hook, which Helm
// waits for. Values: image (default example.com/migrate:1), backoffLimit (default 0), and fail,
// which makes kwok fail its container (KwokContainerFailedLabel), so the hook fails.
const HookJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,post-upgrade
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: {{ .Values.backoffLimit | default 0 }}
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}-migrate
        {{- if .Values.fail }}
        ` + KwokContainerFailedLabel + `: "true"
        {{- end }}
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: {{ .Values.image | default "example.com/migrate:1" }}
          command: ["sh", "-c", "echo migrating to {{ .Chart.Version }}"]
`

// TaskJob is a Job named after the release and the chart version (a Job's Pod template cannot be
// changed, so each version runs a Job of its own). With the value unschedulable its Pod asks for
// more CPU than any simulated node has: the Job starts and never completes.
const TaskJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-task-{{ .Chart.Version | replace "." "-" }}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: task
          image: example.com/task:1
          {{- if .Values.unschedulable }}
          resources:
            requests:
              cpu: "1000"
          {{- end }}
`
