package localenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"sigs.k8s.io/yaml"
)

// DefaultTemplate is the one template of a chart built without WithTemplate: a ConfigMap named
// after the release holding the chart version and every key of .Values.data.
const DefaultTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  labels:
    app.kubernetes.io/managed-by: {{ .Release.Service }}
data:
  chartVersion: {{ .Chart.Version | quote }}
{{- range $k, $v := .Values.data }}
  {{ $k }}: {{ $v | quote }}
{{- end }}
`

// ChartOption changes a chart built by BuildChart.
type ChartOption func(*chartSpec)

type chartSpec struct {
	values     map[string]any
	templates  map[string]string
	files      map[string]string
	appVersion string
}

// WithValues sets the chart's default values.
func WithValues(v map[string]any) ChartOption { return func(s *chartSpec) { s.values = v } }

// WithTemplate adds a template (name relative to templates/); the first use replaces the
// default ConfigMap template.
func WithTemplate(name, text string) ChartOption {
	return func(s *chartSpec) {
		if _, ok := s.templates["configmap.yaml"]; ok && len(s.templates) == 1 && s.templates["configmap.yaml"] == DefaultTemplate {
			delete(s.templates, "configmap.yaml")
		}
		s.templates[name] = text
	}
}

// WithFile adds a file other than a template, by its path in the chart, e.g. a CRD as
// "crds/widgets.yaml" (Helm installs those before the templates and never upgrades them).
func WithFile(path, text string) ChartOption {
	return func(s *chartSpec) {
		if s.files == nil {
			s.files = map[string]string{}
		}
		s.files[path] = text
	}
}

// WithAppVersion sets the chart's appVersion.
func WithAppVersion(v string) ChartOption { return func(s *chartSpec) { s.appVersion = v } }

// BuildChart packages a chart with the Helm SDK and returns the .tgz archive.
func BuildChart(name, version string, opts ...ChartOption) ([]byte, error) {
	spec := &chartSpec{templates: map[string]string{"configmap.yaml": DefaultTemplate}}
	for _, o := range opts {
		o(spec)
	}
	c, err := spec.chart(name, version)
	if err != nil {
		return nil, err
	}
	return packageChart(c)
}

// chart is the chart the spec describes; without values of its own, its values hold
// data.greeting: hello.
func (s *chartSpec) chart(name, version string) (*chart.Chart, error) {
	values := s.values
	if values == nil {
		values = map[string]any{"data": map[string]any{"greeting": "hello"}}
	}
	valuesYAML, err := yaml.Marshal(values)
	if err != nil {
		return nil, err
	}
	c := &chart.Chart{
		Metadata: &chart.Metadata{
			APIVersion:  chart.APIVersionV2,
			Name:        name,
			Version:     version,
			AppVersion:  s.appVersion,
			Description: fmt.Sprintf("%s test chart", name),
			Type:        "application",
		},
		Values: values,
		Raw:    []*chartcommon.File{{Name: chartutil.ValuesfileName, Data: valuesYAML}},
	}
	for n, text := range s.templates {
		c.Templates = append(c.Templates, &chartcommon.File{Name: filepath.Join("templates", n), Data: []byte(text)})
	}
	for p, text := range s.files {
		c.Files = append(c.Files, &chartcommon.File{Name: p, Data: []byte(text)})
	}
	return c, nil
}

// packageChart saves c as a .tgz archive, as helm package does, and returns its bytes.
func packageChart(c *chart.Chart) ([]byte, error) {
	dir, err := os.MkdirTemp("", "helmops-chart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path, err := chartutil.Save(c, dir)
	if err != nil {
		return nil, fmt.Errorf("packaging chart %s %s: %w", c.Metadata.Name, c.Metadata.Version, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(data), nil
}
