// Package shard decides which controller replica handles an object: the one started with
// --shard-id equal to the object's fleet.cattle.io/shard-ref label, or, for objects without the
// label, the one started without --shard-id.
package shard

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/helmops/helmops/api/v1alpha1"
)

// Matches reports whether the object belongs to the shard id ("" is the unlabelled shard).
func Matches(obj client.Object, id string) bool {
	return obj.GetLabels()[v1alpha1.ShardLabel] == id
}

// Predicate admits only the events of objects that belong to the shard id.
func Predicate(id string) predicate.Predicate {
	return predicate.NewPredicateFuncs(func(obj client.Object) bool { return Matches(obj, id) })
}

// Selector selects the objects of the shard id, for restricting a cache to them.
func Selector(id string) labels.Selector {
	if id == "" {
		req, err := labels.NewRequirement(v1alpha1.ShardLabel, selection.DoesNotExist, nil)
		if err != nil {
			panic(err) // the label key is a valid constant
		}
		return labels.NewSelector().Add(*req)
	}
	return labels.SelectorFromSet(labels.Set{v1alpha1.ShardLabel: id})
}
