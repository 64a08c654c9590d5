package statefulset

// The PersistentVolumeClaims of a StatefulSet's pods: one per claim
// template and ordinal, made before the pod and kept after it. The
// persistentVolumeClaimRetentionPolicy is carried out, as upstream, by
// ownerReferences the garbage collector follows: on the set for
// whenDeleted=Delete, on the pod for whenScaled=Delete once its ordinal
// is scaled away.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// claimName is the claim of template for the pod with ordinal.
func claimName(set *appsv1.StatefulSet, template string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", template, set.Name, ordinal)
}

// claimsFor are the claims the pod should have, made from the templates
// and labelled with the set's selector labels.
func claimsFor(set *appsv1.StatefulSet, pod *corev1.Pod) []*corev1.PersistentVolumeClaim {
	o := ordinalOf(pod)
	var out []*corev1.PersistentVolumeClaim
	for i := range set.Spec.VolumeClaimTemplates {
		claim := set.Spec.VolumeClaimTemplates[i].DeepCopy()
		claim.Name = claimName(set, claim.Name, o)
		claim.Namespace = set.Namespace
		claim.Status = corev1.PersistentVolumeClaimStatus{}
		if set.Spec.Selector != nil {
			if claim.Labels == nil {
				claim.Labels = map[string]string{}
			}
			maps.Copy(claim.Labels, set.Spec.Selector.MatchLabels)
		}
		out = append(out, claim)
	}
	return out
}

// createClaims makes the pod's missing claims, each with an event; a
// claim being deleted is an error, so that the pod waits for it to go.
func (c *Controller) createClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	var errs []error
	for _, claim := range claimsFor(set, pod) {
		existing, err := c.pvcLister.PersistentVolumeClaims(claim.Namespace).Get(claim.Name)
		switch {
		case apierrors.IsNotFound(err):
			setRetentionOwners(set, pod, claim)
			_, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(ctx, claim, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("failed to create PVC %s: %w", claim.Name, err))
			}
			if err == nil || !apierrors.IsAlreadyExists(err) {
				c.claimEvent(set, pod, claim, err)
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("failed to retrieve PVC %s: %w", claim.Name, err))
			c.claimEvent(set, pod, claim, err)
		case existing.DeletionTimestamp != nil:
			errs = append(errs, fmt.Errorf("pvc %s is being deleted", claim.Name))
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) claimEvent(set *appsv1.StatefulSet, pod *corev1.Pod, claim *corev1.PersistentVolumeClaim, err error) {
	if err == nil {
		c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", claim.Name, pod.Name, set.Name)
		return
	}
	c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %s", claim.Name, pod.Name, set.Name, err)
}

// claimIsStale says whether one of the pod's claims still belongs to an
// earlier pod of that ordinal (or is being deleted): the new pod must
// wait for the garbage collector to remove it rather than reuse it.
func (c *Controller) claimIsStale(set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error) {
	for _, claim := range claimsFor(set, pod) {
		existing, err := c.pvcLister.PersistentVolumeClaims(claim.Namespace).Get(claim.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false, err
		}
		if existing.DeletionTimestamp != nil {
			return true, nil
		}
		for _, ref := range existing.OwnerReferences {
			if ref.Kind == "Pod" && ref.APIVersion == "v1" && ref.UID != pod.UID {
				return true, nil
			}
		}
	}
	return false, nil
}

// setRetentionOwners gives the claim the ownerReferences the retention
// policy asks for, and says whether it changed
// (updateClaimOwnerRefForSetAndPod).
func setRetentionOwners(set *appsv1.StatefulSet, pod *corev1.Pod, claim *corev1.PersistentVolumeClaim) bool {
	policy := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
	if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		if p.WhenDeleted != "" {
			policy.WhenDeleted = p.WhenDeleted
		}
		if p.WhenScaled != "" {
			policy.WhenScaled = p.WhenScaled
		}
	}
	const del = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	scaledDown := !inRange(set, pod)
	// The set owns the claim while it wants the pod and deletion should
	// take the claim; the pod owns it once scaled away under whenScaled=Delete.
	setOwns := policy.WhenDeleted == del && !(scaledDown && policy.WhenScaled == del)
	podOwns := policy.WhenScaled == del && scaledDown && pod.UID != ""
	if c := metav1.GetControllerOfNoCopy(claim); c != nil && c.UID != set.UID && c.UID != pod.UID {
		// Another controller's claim: ours go, none is added on top.
		setOwns, podOwns = false, false
	}
	changed := owner(claim, setOwns, *metav1.NewControllerRef(set, controllerKind))
	return owner(claim, podOwns, *metav1.NewControllerRef(pod, podKind)) || changed
}

var podKind = corev1.SchemeGroupVersion.WithKind("Pod")

// owner adds ref among the claim's ownerReferences (as a controller, as
// upstream's addControllerRef, replacing a plain one to the same owner)
// or removes it, and says whether that changed them.
func owner(claim *corev1.PersistentVolumeClaim, want bool, ref metav1.OwnerReference) bool {
	i := slices.IndexFunc(claim.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == ref.UID })
	switch {
	case want && i < 0 && ref.UID != "":
		claim.OwnerReferences = append(claim.OwnerReferences, ref)
		return true
	case want && i >= 0 && !equality.Semantic.DeepEqual(claim.OwnerReferences[i], ref):
		claim.OwnerReferences = slices.Clone(claim.OwnerReferences)
		claim.OwnerReferences[i] = ref
		return true
	case !want && i >= 0:
		claim.OwnerReferences = slices.Delete(slices.Clone(claim.OwnerReferences), i, i+1)
		return true
	}
	return false
}

// fixClaimOwners brings the ownerReferences of the pod's existing claims
// in line with the retention policy.
func (c *Controller) fixClaimOwners(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	for _, want := range claimsFor(set, pod) {
		existing, err := c.pvcLister.PersistentVolumeClaims(want.Namespace).Get(want.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		claim := existing.DeepCopy()
		if !setRetentionOwners(set, pod, claim) {
			continue
		}
		patch, err := ownersPatch(claim)
		if err != nil {
			return err
		}
		if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Patch(ctx, claim.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("update owners of claim %s: %w", claim.Name, err)
		}
	}
	return nil
}

// ownersPatch replaces a claim's ownerReferences, guarded by its
// resourceVersion so that a concurrent change is not lost.
func ownersPatch(claim *corev1.PersistentVolumeClaim) ([]byte, error) {
	refs := claim.OwnerReferences
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": refs, "resourceVersion": claim.ResourceVersion,
	}})
}
