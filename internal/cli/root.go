// Package cli wires the helmops subcommands.
package cli

import (
	"github.com/spf13/cobra"
)

// NewRootCommand returns the helmops command with every subcommand.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "helmops",
		Short:         "Deploy Helm charts from repositories and registries to many Kubernetes clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand())
	root.AddCommand(newGetCommand())
	root.AddCommand(newDevCommand())
	root.AddCommand(newControllerCommand())
	root.AddCommand(newReconcileCommand())
	root.AddCommand(newResolveCommand())
	root.AddCommand(newAgentCommand())
	return root
}
