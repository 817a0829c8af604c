package rollout

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// DefaultAcceptedState is the state a dependency must be in when acceptedStates is empty.
const DefaultAcceptedState = "Ready"

// Dependency is one entry of dependsOn.
type Dependency struct {
	// Name is a Bundle of the same namespace.
	Name string
	// Selector matches Bundles of the same namespace by label.
	Selector *metav1.LabelSelector
	// AcceptedStates are the states that satisfy it; empty means Ready.
	AcceptedStates []string
}

// BundleOnCluster is a Bundle of the namespace with the state of its BundleDeployment on one
// cluster.
type BundleOnCluster struct {
	Name   string
	Labels map[string]string
	// State is the BundleDeployment's state on the cluster, "" when the Bundle has none there.
	State string
}

// Waits returns what the Bundle self still waits for on one cluster, one message per unmet
// dependency, empty when every dependency is in an accepted state there. As in Fleet, name and
// selector together must both match; a dependency that matches no Bundle, or a Bundle that has no
// BundleDeployment on the cluster, is waited for. A Bundle never waits for itself.
func Waits(self string, deps []Dependency, bundles []BundleOnCluster) ([]string, error) {
	var waits []string
	for i, d := range deps {
		if d.Name == "" && d.Selector == nil {
			continue // an empty entry, as Fleet skips it
		}
		var sel labels.Selector = labels.Everything()
		if d.Selector != nil {
			s, err := metav1.LabelSelectorAsSelector(d.Selector)
			if err != nil {
				return nil, &InvalidDependencyError{Index: i, Err: err}
			}
			sel = s
		}
		accepted := d.AcceptedStates
		if len(accepted) == 0 {
			accepted = []string{DefaultAcceptedState}
		}
		matched := 0
		var pending []string
		for _, b := range bundles {
			if b.Name == self || (d.Name != "" && b.Name != d.Name) || !sel.Matches(labels.Set(b.Labels)) {
				continue
			}
			matched++
			switch {
			case b.State == "":
				pending = append(pending, b.Name+" (not deployed on this cluster)")
			case !slices.Contains(accepted, b.State):
				pending = append(pending, b.Name+" ("+b.State+")")
			}
		}
		sort.Strings(pending)
		switch {
		case matched == 0:
			waits = append(waits, "no Bundle matches "+describe(d))
		case len(pending) > 0:
			waits = append(waits, strings.Join(pending, ", ")+" not "+strings.Join(accepted, " or "))
		}
	}
	return waits, nil
}

func describe(d Dependency) string {
	var parts []string
	if d.Name != "" {
		parts = append(parts, "name "+d.Name)
	}
	if d.Selector != nil {
		if s, err := metav1.LabelSelectorAsSelector(d.Selector); err == nil {
			parts = append(parts, "selector "+s.String())
		}
	}
	return strings.Join(parts, " and ")
}

// InvalidDependencyError is a dependsOn entry that cannot be evaluated.
type InvalidDependencyError struct {
	Index int
	Err   error
}

func (e *InvalidDependencyError) Error() string {
	return fmt.Sprintf("spec.dependsOn[%d].selector: %v", e.Index, e.Err)
}

func (e *InvalidDependencyError) Unwrap() error { return e.Err }
