// Package history keeps the ControllerRevisions of a workload whose pods
// come from one template, as Kubernetes' controller history does for
// DaemonSets and StatefulSets: one revision per distinct template, named
// after its owner and a hash, numbered in the order the templates were
// used, and trimmed to the owner's revisionHistoryLimit. kubectl rollout
// history and undo read these revisions.
//
// The package knows nothing of the owner's kind: a controller gives it
// the owner's metadata and kind, the patch bytes that restore the
// template (the revision's data), the labels to put on the revision and
// its hash. The DaemonSet and StatefulSet controllers use it.
package history

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	appsclient "k8s.io/client-go/kubernetes/typed/apps/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/utils/dump"
)

// HashLabel is the label that carries a revision's hash, on the revision
// and on the pods made from it (DaemonSet pods; StatefulSet pods carry
// the revision's name under the same key).
const HashLabel = appsv1.ControllerRevisionHashLabelKey

// TemplateHash is the hash a DaemonSet's revisions and pods are named
// with, as kube-controller-manager's ComputeHash: FNV-32a over the
// template's deep dump, salted with the collision count, encoded with
// rand's safe alphabet.
func TemplateHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*template))
	salt(h, collisionCount)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// DataHash is the hash Kubernetes' HashControllerRevision gives a
// revision's data, the one StatefulSets name their revisions with:
// FNV-32 (not 32a) of the data, salted with the collision count in
// decimal.
func DataHash(data []byte, collisionCount *int32) string {
	h := fnv.New32()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

func salt(h interface{ Write([]byte) (int, error) }, collisionCount *int32) {
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		h.Write(b)
	}
}

// TemplatePatch is the data of a revision of an owner with a pod
// template, as the DaemonSet controller and kubectl's getDaemonSetPatch
// build it: the template (as JSON of the whole spec.template) marked
// "$patch": "replace", under spec. kubectl rollout undo sends these
// bytes back as a strategic merge patch, and compares them to find the
// current revision, so they must match upstream byte for byte.
func TemplatePatch(template *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(template)
	if err != nil {
		return nil, err
	}
	var t map[string]any
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	t["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": t}})
}

// New makes (without storing) revision number of owner (of kind) with
// data, named <owner>-<hash>, labelled with templateLabels plus
// HashLabel=hash, annotated with annotations, and controlled by owner.
func New(owner metav1.Object, kind schema.GroupVersionKind, templateLabels, annotations map[string]string, data []byte, hash string, number int64) *appsv1.ControllerRevision {
	l := maps.Clone(templateLabels)
	if l == nil {
		l = map[string]string{}
	}
	l[HashLabel] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            Name(owner.GetName(), hash),
			Namespace:       owner.GetNamespace(),
			Labels:          l,
			Annotations:     maps.Clone(annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, kind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: number,
	}
}

// Name is a revision's name: the owner's name and the hash, cut so that
// the name stays a valid label value (as Kubernetes' ControllerRevisionName).
func Name(owner, hash string) string {
	if len(owner) > 223 {
		owner = owner[:223]
	}
	return owner + "-" + hash
}

// Equal says whether two revisions hold the same template.
func Equal(a, b *appsv1.ControllerRevision) bool {
	return bytes.Equal(a.Data.Raw, b.Data.Raw)
}

// Matches says whether a revision holds data.
func Matches(r *appsv1.ControllerRevision, data []byte) bool {
	return bytes.Equal(r.Data.Raw, data)
}

// Next is the number a new revision gets: one more than the highest.
func Next(revs []*appsv1.ControllerRevision) int64 {
	var top int64
	for _, r := range revs {
		top = max(top, r.Revision)
	}
	return top + 1
}

// Sort orders revisions oldest first: by number, then creation, then name.
func Sort(revs []*appsv1.ControllerRevision) {
	slices.SortStableFunc(revs, func(a, b *appsv1.ControllerRevision) int {
		switch {
		case a.Revision != b.Revision:
			return cmp.Compare(a.Revision, b.Revision)
		case !a.CreationTimestamp.Equal(&b.CreationTimestamp):
			if a.CreationTimestamp.Before(&b.CreationTimestamp) {
				return -1
			}
			return 1
		}
		return bytes.Compare([]byte(a.Name), []byte(b.Name))
	})
}

// History reads revisions from a lister and writes them through the API.
type History struct {
	Client appsclient.ControllerRevisionsGetter
	Lister appslisters.ControllerRevisionLister
}

// List returns owner's revisions: those it controls, and orphans its
// selector matches, which it adopts (as the ControllerRevision
// ControllerRefManager) once canAdopt, asked before the first adoption,
// has confirmed with a fresh read that the owner is still there and not
// being deleted (an informer behind a delete with orphaning would
// otherwise take back what the garbage collector just released).
// Revisions of another controller are left alone.
func (h *History) List(ctx context.Context, owner metav1.Object, kind schema.GroupVersionKind, selector labels.Selector, canAdopt func() error) ([]*appsv1.ControllerRevision, error) {
	all, err := h.Lister.ControllerRevisions(owner.GetNamespace()).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ControllerRevision
	for _, r := range all {
		ref := metav1.GetControllerOfNoCopy(r)
		switch {
		case ref != nil && ref.UID == owner.GetUID():
			out = append(out, r)
		case ref == nil && selector.Matches(labels.Set(r.Labels)) && r.DeletionTimestamp == nil && owner.GetDeletionTimestamp() == nil:
			if err := canAdopt(); err != nil {
				return nil, err
			}
			adopted, err := h.adopt(ctx, owner, kind, r)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, adopted)
		}
	}
	return out, nil
}

// OwnerCheck returns a canAdopt for List (and for adopting pods): once,
// at its first call, it reads the owner afresh with get and fails if the
// owner is gone, replaced by another of the same name, or being deleted.
func OwnerCheck(owner metav1.Object, get func() (metav1.Object, error)) func() error {
	return sync.OnceValue(func() error {
		fresh, err := get()
		if err != nil {
			return err
		}
		if fresh.GetUID() != owner.GetUID() || fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%s/%s changed: not adopting", owner.GetNamespace(), owner.GetName())
		}
		return nil
	})
}

func (h *History) adopt(ctx context.Context, owner metav1.Object, kind schema.GroupVersionKind, r *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(owner, kind)},
		"uid":             r.UID,
	}})
	if err != nil {
		return nil, err
	}
	return h.Client.ControllerRevisions(r.Namespace).Patch(ctx, r.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
}

// Create stores rev. A revision of that name already there with the
// same data is returned as is (a cache behind, or a restart); one with
// other data is a hash collision, reported as a *CollisionError so that
// the owner bumps its collisionCount and tries again.
func (h *History) Create(ctx context.Context, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	created, err := h.Client.ControllerRevisions(rev.Namespace).Create(ctx, rev, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return created, err
	}
	existing, getErr := h.Client.ControllerRevisions(rev.Namespace).Get(ctx, rev.Name, metav1.GetOptions{})
	if getErr != nil {
		return nil, getErr
	}
	if metav1.IsControlledBy(existing, ownerOf(rev)) && Equal(existing, rev) {
		return existing, nil
	}
	return nil, &CollisionError{Name: rev.Name}
}

// ownerOf is a stand-in carrying the uid of rev's controller, for
// IsControlledBy.
func ownerOf(rev *appsv1.ControllerRevision) metav1.Object {
	o := &metav1.ObjectMeta{}
	if ref := metav1.GetControllerOfNoCopy(rev); ref != nil {
		o.UID = ref.UID
	}
	return o
}

// CollisionError says another template already has the revision's name.
type CollisionError struct{ Name string }

func (e *CollisionError) Error() string {
	return fmt.Sprintf("controller revision %s exists with other data: hash collision", e.Name)
}

// Renumber gives rev number, as when a rollback brings back an earlier
// template: it becomes the newest revision.
func (h *History) Renumber(ctx context.Context, rev *appsv1.ControllerRevision, number int64) (*appsv1.ControllerRevision, error) {
	if rev.Revision == number {
		return rev, nil
	}
	c := rev.DeepCopy()
	c.Revision = number
	return h.Client.ControllerRevisions(c.Namespace).Update(ctx, c, metav1.UpdateOptions{})
}

// Delete removes a revision; one already gone is no error.
func (h *History) Delete(ctx context.Context, rev *appsv1.ControllerRevision) error {
	err := h.Client.ControllerRevisions(rev.Namespace).Delete(ctx, rev.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Prune deletes the oldest of old (the owner's revisions but the
// current one) that live does not protect, until at most limit are
// left. live is true for a revision some pod still runs. A negative
// limit (a StatefulSet's may be) keeps them all, as upstream.
func (h *History) Prune(ctx context.Context, old []*appsv1.ControllerRevision, limit int, live func(*appsv1.ControllerRevision) bool) error {
	excess := len(old) - limit
	if limit < 0 || excess <= 0 {
		return nil
	}
	old = slices.Clone(old)
	Sort(old)
	for _, r := range old {
		if excess <= 0 {
			break
		}
		if live(r) {
			continue
		}
		if err := h.Delete(ctx, r); err != nil {
			return err
		}
		excess--
	}
	return nil
}
