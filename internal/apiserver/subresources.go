package apiserver

import (
	"errors"
	"fmt"
	"net/http"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// scaleOf renders an object's /scale view.
func (q *request) scaleOf(obj runtime.Object) *autoscalingv1.Scale {
	m, _ := meta.Accessor(obj)
	spec, status, sel := q.res.Scale.Get(obj)
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp()},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: sel},
	}
}

// scale serves GET, PUT and PATCH on */scale.
func (s *Server) scale(q *request) error {
	out, err := s.codecs.negotiate(q.r, &autoscalingv1.Scale{})
	if err != nil {
		return err
	}
	write := func(obj runtime.Object) {
		for _, w := range q.warnings {
			q.w.Header().Add("Warning", fmt.Sprintf("299 - %q", w))
		}
		s.writeObject(q.w, q.r, http.StatusOK, q.scaleOf(obj), out)
	}
	switch q.ri.Verb {
	case "get":
		obj, err := s.store.Get(q.ctx, q.key(q.ri.Name))
		if err != nil {
			return err
		}
		write(obj)
		return nil
	case "update", "patch":
	default:
		return apierrors.NewMethodNotSupported(q.gr(), q.ri.Verb)
	}
	var pt = ""
	var body []byte
	var want *autoscalingv1.Scale
	if q.ri.Verb == "patch" {
		t, err := patchType(q.r)
		if err != nil {
			return err
		}
		pt = string(t)
		if body, err = readBody(q.r); err != nil {
			return err
		}
	} else {
		data, err := readBody(q.r)
		if err != nil {
			return err
		}
		obj, err := s.decodeObject(q, data, scaleGVK, &autoscalingv1.Scale{})
		if err != nil {
			return err
		}
		want = obj.(*autoscalingv1.Scale)
	}
	dry, err := dryRun(q.r)
	if err != nil {
		return err
	}
	var result runtime.Object
	stored, err := s.store.Update(q.ctx, q.key(q.ri.Name), func(cur runtime.Object) (runtime.Object, error) {
		sc := want
		if pt != "" {
			original, err := runtime.Encode(s.codecs.json.Serializer, q.scaleOf(cur))
			if err != nil {
				return nil, err
			}
			patched, err := applyPatch(typesPatch(pt), original, body, &autoscalingv1.Scale{})
			if err != nil {
				return nil, err
			}
			// The patched Scale is JSON whatever the patch's media type;
			// fieldValidation applies to it as to any body.
			jq := *q
			jq.r = q.r.Clone(q.ctx)
			jq.r.Header.Set("Content-Type", mediaJSON)
			obj, err := s.decodeObject(&jq, patched, scaleGVK, &autoscalingv1.Scale{})
			q.warnings = jq.warnings
			if err != nil {
				return nil, err
			}
			sc = obj.(*autoscalingv1.Scale)
		}
		m, _ := meta.Accessor(cur)
		if sc.ResourceVersion != "" && sc.ResourceVersion != m.GetResourceVersion() {
			return nil, apierrors.NewConflict(q.gr(), q.ri.Name, errors.New(conflictMsg))
		}
		if sc.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(schema.GroupKind{Group: "autoscaling", Kind: "Scale"}, q.ri.Name,
				field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0")})
		}
		obj := cur.DeepCopyObject()
		q.res.Scale.SetReplicas(obj, sc.Spec.Replicas)
		m2, _ := meta.Accessor(obj)
		if specChanged(cur, obj) {
			m2.SetGeneration(m.GetGeneration() + 1)
		}
		if dry {
			result = obj
			return nil, errDryRun
		}
		return obj, nil
	}, nil)
	if errors.Is(err, errDryRun) {
		write(result)
		return nil
	}
	if err != nil {
		return err
	}
	write(stored)
	return nil
}

// bindPod serves pods/binding: the scheduler's way to set spec.nodeName.
func (s *Server) bindPod(q *request) error {
	data, err := readBody(q.r)
	if err != nil {
		return err
	}
	obj, err := s.decodeObject(q, data, corev1.SchemeGroupVersion.WithKind("Binding"), &corev1.Binding{})
	if err != nil {
		return err
	}
	b := obj.(*corev1.Binding)
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		return s.invalid(q, q.ri.Name, field.ErrorList{field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"})})
	}
	if b.Target.Name == "" {
		return s.invalid(q, q.ri.Name, field.ErrorList{field.Required(field.NewPath("target", "name"), "")})
	}
	_, err = s.store.Update(q.ctx, q.key(q.ri.Name), func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(q.gr(), q.ri.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(q.gr(), q.ri.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(q.gr(), q.ri.Name, fmt.Errorf("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		return pod, nil
	}, nil)
	if err != nil {
		return err
	}
	st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated}
	s.writeStatus(q, http.StatusCreated, st)
	return nil
}

func setPodCondition(pod *corev1.Pod, c corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == c.Type {
			if pod.Status.Conditions[i].Status == c.Status {
				return
			}
			pod.Status.Conditions[i] = c
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}

// evictPod serves pods/eviction. With no PodDisruptionBudgets yet, an
// eviction is a delete with the eviction's options.
func (s *Server) evictPod(q *request) error {
	data, err := readBody(q.r)
	if err != nil {
		return err
	}
	obj, err := s.decodeObject(q, data, policyv1.SchemeGroupVersion.WithKind("Eviction"), &policyv1.Eviction{})
	if err != nil {
		return err
	}
	ev := obj.(*policyv1.Eviction)
	if ev.Name != "" && ev.Name != q.ri.Name {
		return badRequest("name in URL does not match name in Eviction object")
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if _, _, err := s.deleteObject(q.ctx, q.res, q.key(q.ri.Name), q.ri.Name, opts); err != nil {
		return err
	}
	st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated}
	s.writeStatus(q, http.StatusCreated, st)
	return nil
}

// writeStatus replies with a success Status in the negotiated format.
func (s *Server) writeStatus(q *request, code int, st *metav1.Status) {
	out, err := s.codecs.negotiate(q.r, st)
	if err != nil {
		out = output{Media: mediaJSON, Info: s.codecs.json}
	}
	s.writeObject(q.w, q.r, code, st, out)
}
