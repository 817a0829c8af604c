package devenv

import (
	"fmt"

	"github.com/helmops/helmops/internal/localenv"
)

// DemoCharts are published at start, in every version listed.
var DemoCharts = map[string][]string{
	"hello":           {"0.1.0", "0.2.0", "0.3.0-rc.1"},
	"fantastic-chart": {"1.0.0", "1.1.0"},
	"web":             {"1.0.0", "1.1.0"},
	"widgets":         {"0.1.0"},
	"migrations":      {"1.0.0"},
}

// BuildDemoChart packages a demo chart. The charts other than web, widgets and migrations hold
// one ConfigMap. failing makes the web chart's Pods crash-loop on the simulated nodes (its
// default value simulateFailure: true), so the version never gets Ready; other charts ignore it.
func BuildDemoChart(name, version string, failing bool) ([]byte, error) {
	switch name {
	case "web":
		return localenv.BuildChart(name, version,
			localenv.WithValues(map[string]any{"replicas": 2, "image": "nginx:1.27", "simulateFailure": failing}),
			localenv.WithTemplate("deployment.yaml", webDeployment),
			localenv.WithTemplate("service.yaml", webService),
			localenv.WithTemplate("hpa.yaml", webHPA))
	case "widgets":
		return localenv.BuildChart(name, version,
			localenv.WithValues(map[string]any{"size": "large"}),
			localenv.WithFile("crds/widgets.yaml", widgetCRD),
			localenv.WithTemplate("widget.yaml", widget))
	case "migrations":
		return localenv.BuildChart(name, version,
			localenv.WithValues(map[string]any{"image": "busybox:1.37", "backoffLimit": 1}),
			localenv.WithTemplate("job.yaml", localenv.HookJob),
			localenv.WithTemplate("configmap.yaml", localenv.DefaultTemplate))
	default:
		return localenv.BuildChart(name, version)
	}
}

// checkFailing refuses a failing variant of a chart that has none.
func checkFailing(name string, failing bool) error {
	if failing && name != "web" {
		return fmt.Errorf("only the web chart has a failing variant, not %q", name)
	}
	return nil
}

// The web chart: a Deployment scaled by a HorizontalPodAutoscaler (so the Deployment names no
// replicas of its own), and a Service in front of it.
const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: web
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
        app.kubernetes.io/instance: {{ .Release.Name }}
        {{- if .Values.simulateFailure }}
        simulate.helmops.dev/crash-loop: "true"
        {{- end }}
      annotations:
        helmops.dev/chart-version: {{ .Chart.Version | quote }}
    spec:
      containers:
        - name: web
          image: {{ .Values.image }}
          ports:
            - containerPort: 80
          resources:
            requests:
              cpu: 100m
              memory: 64Mi
`

const webService = `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app.kubernetes.io/instance: {{ .Release.Name }}
  ports:
    - port: 80
      targetPort: 80
`

const webHPA = `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .Release.Name }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .Release.Name }}
  minReplicas: {{ .Values.replicas }}
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 80
`

// The widgets chart: a CRD in crds/ (installed by Helm before the templates) and a Widget.
const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.helmops.dev
spec:
  group: demo.helmops.dev
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    singular: widget
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size:
                  type: string
                  enum: [small, medium, large]
`

const widget = `apiVersion: demo.helmops.dev/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}
spec:
  size: {{ .Values.size }}
`
