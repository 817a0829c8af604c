// Command helmops deploys Helm charts from repositories and registries to many clusters.
package main

import (
	"fmt"
	"os"

	"github.com/helmops/helmops/internal/cli"
)

func main() {
	if err := cli.NewRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
