package charts

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

//go:embed all:helmops-agent
var agentChart embed.FS

// AgentChart is charts/helmops-agent, as the controller installs it into clusters whose Cluster
// names a kubeconfig (spec.kubeConfigSecret).
func AgentChart() (*chart.Chart, error) {
	var files []*archive.BufferedFile
	err := fs.WalkDir(agentChart, "helmops-agent", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := agentChart.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: strings.TrimPrefix(p, "helmops-agent/"), Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the embedded agent chart: %w", err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("loading the embedded agent chart: %w", err)
	}
	return ch, nil
}
