// Package shard decides which controller replica handles an object: the one started with
// --shard-id equal to the object's fleet.cattle.io/shard-ref label, or, for objects without the
// label, the one started without --shard-id.
package shard

import (
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
