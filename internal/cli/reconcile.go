package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmops/helmops/api/v1alpha1"
)

func newReconcileCommand() *cobra.Command {
	var (
		kubeconfig, namespace string
		timeout               time.Duration
	)
	cmd := &cobra.Command{Use: "reconcile", Short: "Ask the controller to reconcile an object now"}
	one := &cobra.Command{
		Use:   "helmop NAME",
		Short: "Poll the HelmOp's repository now and wait until the controller has done it",
		Long: `Sets the annotation fleet.cattle.io/reconcile-requested-at to the current time and waits
until the controller reports it handled that value in status.lastHandledReconcileAt.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := kubeClient(kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return reconcileHelmOp(ctx, c, cmd, client.ObjectKey{Namespace: namespace, Name: args[0]})
		},
	}
	one.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the management cluster")
	one.Flags().StringVarP(&namespace, "namespace", "n", "fleet-local", "namespace of the HelmOp")
	one.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the controller")
	cmd.AddCommand(one)
	return cmd
}

func reconcileHelmOp(ctx context.Context, c client.Client, cmd *cobra.Command, key client.ObjectKey) error {
	op := &v1alpha1.HelmOp{}
	if err := c.Get(ctx, key, op); err != nil {
		return fmt.Errorf("getting HelmOp %s: %w", key, err)
	}
	requested := time.Now().UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(op.DeepCopy())
	if op.Annotations == nil {
		op.Annotations = map[string]string{}
	}
	op.Annotations[v1alpha1.ReconcileRequestedAnnotation] = requested
	if err := c.Patch(ctx, op, patch); err != nil {
		return fmt.Errorf("annotating HelmOp %s: %w", key, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Asked for a reconcile of HelmOp %s\n", key)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("HelmOp %s: the controller did not handle the request in time (is `helmops controller` running for its shard?)", key)
		case <-tick.C:
		}
		if err := c.Get(ctx, key, op); err != nil {
			return err
		}
		if op.Status.LastHandledReconcileAt == requested {
			accepted := meta.FindStatusCondition(op.Status.Conditions, v1alpha1.AcceptedCondition)
			state := "unknown"
			if accepted != nil {
				state = fmt.Sprintf("%s=%s %s", accepted.Type, accepted.Status, accepted.Message)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Reconciled: version %s, %s\n", orDash(op.Status.Version), state)
			return nil
		}
	}
}
