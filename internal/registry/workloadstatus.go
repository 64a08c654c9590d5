package registry

import (
	appsv1 "k8s.io/api/apps/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// count is one status counter, for nonNegative.
type count struct {
	name  string
	value int64
}

// nonNegative checks that each counter under path is at least 0.
func nonNegative(path *field.Path, counts ...count) field.ErrorList {
	var errs field.ErrorList
	for _, c := range counts {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(c.value, path.Child(c.name))...)
	}
	return errs
}

// collisionCount checks a collision count: at least 0, never lowered.
func collisionCount(cur, old *int32, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if cur != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(*cur), path)...)
	}
	if old != nil && (cur == nil || *cur < *old) {
		var v int32
		if cur != nil {
			v = *cur
		}
		errs = append(errs, field.Invalid(path, v, "cannot be decremented"))
	}
	return errs
}

// validateStatefulSetStatus checks a write to a StatefulSet's /status as
// ValidateStatefulSetStatusUpdate.
func validateStatefulSetStatus(obj, old runtime.Object) field.ErrorList {
	s, oldStatus := obj.(*appsv1.StatefulSet).Status, old.(*appsv1.StatefulSet).Status
	path := field.NewPath("status")
	errs := nonNegative(path, count{"replicas", int64(s.Replicas)}, count{"readyReplicas", int64(s.ReadyReplicas)},
		count{"currentReplicas", int64(s.CurrentReplicas)}, count{"updatedReplicas", int64(s.UpdatedReplicas)},
		count{"availableReplicas", int64(s.AvailableReplicas)}, count{"observedGeneration", s.ObservedGeneration})
	const overReplicas = "cannot be greater than status.replicas"
	for _, c := range []count{{"readyReplicas", int64(s.ReadyReplicas)}, {"currentReplicas", int64(s.CurrentReplicas)},
		{"updatedReplicas", int64(s.UpdatedReplicas)}, {"availableReplicas", int64(s.AvailableReplicas)}} {
		if c.value > int64(s.Replicas) {
			errs = append(errs, field.Invalid(path.Child(c.name), c.value, overReplicas))
		}
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(path.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than status.readyReplicas"))
	}
	return append(errs, collisionCount(s.CollisionCount, oldStatus.CollisionCount, path.Child("collisionCount"))...)
}

// validateDaemonSetStatus checks a write to a DaemonSet's /status as
// ValidateDaemonSetStatusUpdate.
func validateDaemonSetStatus(obj, old runtime.Object) field.ErrorList {
	s, oldStatus := obj.(*appsv1.DaemonSet).Status, old.(*appsv1.DaemonSet).Status
	path := field.NewPath("status")
	errs := nonNegative(path, count{"currentNumberScheduled", int64(s.CurrentNumberScheduled)},
		count{"numberMisscheduled", int64(s.NumberMisscheduled)}, count{"desiredNumberScheduled", int64(s.DesiredNumberScheduled)},
		count{"numberReady", int64(s.NumberReady)}, count{"observedGeneration", s.ObservedGeneration},
		count{"updatedNumberScheduled", int64(s.UpdatedNumberScheduled)}, count{"numberAvailable", int64(s.NumberAvailable)},
		count{"numberUnavailable", int64(s.NumberUnavailable)})
	return append(errs, collisionCount(s.CollisionCount, oldStatus.CollisionCount, path.Child("collisionCount"))...)
}

// replicaCounts checks counts that may not exceed status.replicas, and
// available within ready, with the words the Deployment and ReplicaSet
// validations use.
func replicaCounts(path *field.Path, replicas, ready, available int32, within ...count) field.ErrorList {
	var errs field.ErrorList
	for _, c := range within {
		if c.value > int64(replicas) {
			errs = append(errs, field.Invalid(path.Child(c.name), c.value, "cannot be greater than status.replicas"))
		}
	}
	if available > ready {
		errs = append(errs, field.Invalid(path.Child("availableReplicas"), available, "cannot be greater than readyReplicas"))
	}
	return errs
}

// validateDeploymentStatus checks a write to a Deployment's /status as
// ValidateDeploymentStatusUpdate.
func validateDeploymentStatus(obj, old runtime.Object) field.ErrorList {
	s, oldStatus := obj.(*appsv1.Deployment).Status, old.(*appsv1.Deployment).Status
	path := field.NewPath("status")
	errs := nonNegative(path, count{"observedGeneration", s.ObservedGeneration}, count{"replicas", int64(s.Replicas)},
		count{"updatedReplicas", int64(s.UpdatedReplicas)}, count{"readyReplicas", int64(s.ReadyReplicas)},
		count{"availableReplicas", int64(s.AvailableReplicas)}, count{"unavailableReplicas", int64(s.UnavailableReplicas)})
	errs = append(errs, replicaCounts(path, s.Replicas, s.ReadyReplicas, s.AvailableReplicas,
		count{"updatedReplicas", int64(s.UpdatedReplicas)}, count{"readyReplicas", int64(s.ReadyReplicas)},
		count{"availableReplicas", int64(s.AvailableReplicas)})...)
	return append(errs, collisionCount(s.CollisionCount, oldStatus.CollisionCount, path.Child("collisionCount"))...)
}

// validateReplicaSetStatus checks a write to a ReplicaSet's /status as
// ValidateReplicaSetStatusUpdate.
func validateReplicaSetStatus(obj, _ runtime.Object) field.ErrorList {
	s := obj.(*appsv1.ReplicaSet).Status
	path := field.NewPath("status")
	errs := nonNegative(path, count{"replicas", int64(s.Replicas)}, count{"fullyLabeledReplicas", int64(s.FullyLabeledReplicas)},
		count{"readyReplicas", int64(s.ReadyReplicas)}, count{"availableReplicas", int64(s.AvailableReplicas)},
		count{"observedGeneration", s.ObservedGeneration})
	if s.TerminatingReplicas != nil {
		errs = append(errs, nonNegative(path, count{"terminatingReplicas", int64(*s.TerminatingReplicas)})...)
	}
	return append(errs, replicaCounts(path, s.Replicas, s.ReadyReplicas, s.AvailableReplicas,
		count{"fullyLabeledReplicas", int64(s.FullyLabeledReplicas)}, count{"readyReplicas", int64(s.ReadyReplicas)},
		count{"availableReplicas", int64(s.AvailableReplicas)})...)
}
