package registry

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func pods() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"},
		Kind:                 "Pod",
		SingularName:         "pod",
		Namespaced:           true,
		ShortNames:           []string{"po"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &corev1.Pod{} },
		NewList:              func() runtime.Object { return &corev1.PodList{} },
		Status:               true,
		Default:              func(obj runtime.Object) { defaultPod(obj.(*corev1.Pod)) },
		PrepareForCreate:     func(obj runtime.Object) { preparePodForCreate(obj.(*corev1.Pod)) },
		Validate:             func(obj runtime.Object) field.ErrorList { return validatePod(obj.(*corev1.Pod)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validatePodUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
		},
		Fields: func(obj runtime.Object) fields.Set { return podFields(obj.(*corev1.Pod)) },
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
				column("Status", "string", "The aggregate status of the containers in this pod."),
				column("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
				ageColumn(),
				wideColumn("IP", "string", corev1.PodStatus{}.SwaggerDoc()["podIP"]),
				wideColumn("Node", "string", corev1.PodSpec{}.SwaggerDoc()["nodeName"]),
				wideColumn("Nominated Node", "string", corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"]),
				wideColumn("Readiness Gates", "string", corev1.PodSpec{}.SwaggerDoc()["readinessGates"]),
			},
			Cells: func(obj runtime.Object) []any { return podCells(obj.(*corev1.Pod)) },
		},
	}
}

// defaultPod applies the pod spec defaults plus those Kubernetes gives only
// to Pods, not to templates: requests from limits, service links, and host
// ports on the host network.
func defaultPod(pod *corev1.Pod) {
	defaultPodSpec(&pod.Spec)
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			r := &cs[i].Resources
			for name, limit := range r.Limits {
				if _, ok := r.Requests[name]; ok {
					continue
				}
				if r.Requests == nil {
					r.Requests = corev1.ResourceList{}
				}
				r.Requests[name] = limit.DeepCopy()
			}
			if pod.Spec.HostNetwork {
				for j := range cs[i].Ports {
					if p := &cs[i].Ports[j]; p.HostPort == 0 {
						p.HostPort = p.ContainerPort
					}
				}
			}
		}
	}
	if pod.Spec.EnableServiceLinks == nil {
		pod.Spec.EnableServiceLinks = new(corev1.DefaultEnableServiceLinks)
	}
}

// preparePodForCreate starts a pod's life: a Pending status with its QoS
// class, and the PodScheduled=False condition when scheduling gates hold it.
func preparePodForCreate(pod *corev1.Pod) {
	pod.Generation = 1
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: podQOSClass(pod)}
	if len(pod.Spec.SchedulingGates) > 0 {
		pod.Status.Conditions = []corev1.PodCondition{{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		}}
	}
}

// podQOSClass computes a pod's quality of service from the cpu and memory of
// its containers (or of the pod itself, when pod-level resources are set):
// Guaranteed when every request equals its limit, BestEffort when none is
// set, Burstable otherwise.
func podQOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	if r := pod.Spec.Resources; r != nil && hasComputeResources(r) {
		return requirementsQOS(r)
	}
	var qos corev1.PodQOSClass
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		cq := requirementsQOS(&c.Resources)
		switch {
		case cq == corev1.PodQOSBurstable:
			return cq
		case qos == "":
			qos = cq
		case qos != cq:
			// One container has nothing set and another is guaranteed.
			return corev1.PodQOSBurstable
		}
	}
	if qos == "" {
		return corev1.PodQOSBestEffort
	}
	return qos
}

func hasComputeResources(r *corev1.ResourceRequirements) bool {
	for _, rl := range []corev1.ResourceList{r.Requests, r.Limits} {
		if _, ok := rl[corev1.ResourceCPU]; ok {
			return true
		}
		if _, ok := rl[corev1.ResourceMemory]; ok {
			return true
		}
	}
	return false
}

// requirementsQOS classes one set of requirements. Each of cpu and memory is
// Guaranteed (request equals a non-zero limit), BestEffort (neither set) or
// Burstable; any mix is Burstable.
func requirementsQOS(r *corev1.ResourceRequirements) corev1.PodQOSClass {
	var qos corev1.PodQOSClass
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := r.Requests[name], r.Limits[name]
		var rq corev1.PodQOSClass
		switch {
		case !req.Equal(lim):
			return corev1.PodQOSBurstable
		case req.IsZero():
			rq = corev1.PodQOSBestEffort
		default:
			rq = corev1.PodQOSGuaranteed
		}
		if qos != "" && qos != rq {
			return corev1.PodQOSBurstable
		}
		qos = rq
	}
	return qos
}

// validatePod checks a pod's metadata and spec, with the rules that apply to
// Pods but not to templates.
func validatePod(pod *corev1.Pod) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := validateObjectMeta(&pod.ObjectMeta, true, nameIsDNSSubdomain)
	if v, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]; ok && pod.Spec.NodeName == "" {
		errs = append(errs, field.Invalid(metadataPath.Child("annotations").Key(corev1.MirrorPodAnnotationKey), v,
			"must set spec.nodeName if mirror pod annotation is set"))
	}
	errs = append(errs, checkPodSpec(&pod.Spec, true, specPath)...)
	if pod.Spec.ServiceAccountName == "" {
		for i, v := range pod.Spec.Volumes {
			if v.Projected == nil {
				continue
			}
			for j, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					errs = append(errs, field.Forbidden(specPath.Child("volumes").Index(i).Child("projected", "sources").Index(j).Child("serviceAccountToken"),
						"must not be specified when serviceAccountName is not set"))
				}
			}
		}
	}
	errs = append(errs, validateImageWhitespace(pod.Spec.Containers, specPath.Child("containers"))...)
	errs = append(errs, validateImageWhitespace(pod.Spec.InitContainers, specPath.Child("initContainers"))...)
	return errs
}

func validateImageWhitespace(containers []corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range containers {
		if c.Image != strings.TrimSpace(c.Image) {
			errs = append(errs, field.Invalid(path.Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
	}
	return errs
}

// updatablePodSpecFields is the list Kubernetes quotes when a pod update
// touches anything else.
var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// validatePodUpdate enforces that a pod's spec is immutable but for images,
// a shrinking activeDeadlineSeconds, added tolerations and removed
// scheduling gates. Binding a pod to a node is the binding subresource's
// job, not an update's.
func validatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := validateObjectMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)

	for _, cs := range []struct {
		name     string
		new, old []corev1.Container
	}{
		{"containers", pod.Spec.Containers, old.Spec.Containers},
		{"initContainers", pod.Spec.InitContainers, old.Spec.InitContainers},
	} {
		if len(cs.new) != len(cs.old) {
			return append(errs, field.Forbidden(specPath.Child(cs.name), "pod updates may not add or remove containers"))
		}
		for i, c := range cs.new {
			if c.Image == "" {
				errs = append(errs, field.Required(specPath.Child(cs.name).Index(i).Child("image"), ""))
			}
		}
	}

	deadlinePath := specPath.Child("activeDeadlineSeconds")
	switch d, od := pod.Spec.ActiveDeadlineSeconds, old.Spec.ActiveDeadlineSeconds; {
	case d != nil && (*d < 0 || *d > 1<<31-1):
		return append(errs, field.Invalid(deadlinePath, *d, validation.InclusiveRangeError(0, 1<<31-1)))
	case d != nil && od != nil && *od < *d:
		return append(errs, field.Invalid(deadlinePath, *d, "must be less than or equal to previous value"))
	case d == nil && od != nil:
		errs = append(errs, field.Invalid(deadlinePath, d, "must not update from a positive integer to nil value"))
	}

	errs = append(errs, validateOnlyAddedTolerations(pod.Spec.Tolerations, old.Spec.Tolerations, specPath.Child("tolerations"))...)
	errs = append(errs, validateOnlyDeletedSchedulingGates(pod.Spec.SchedulingGates, old.Spec.SchedulingGates, specPath.Child("schedulingGates"))...)

	if equality.Semantic.DeepEqual(pod.Spec, old.Spec) {
		return errs
	}
	// Put back the old values of what may change; anything left over is a
	// forbidden change.
	munged := pod.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	munged.Tolerations = old.Spec.Tolerations
	munged.SchedulingGates = old.Spec.SchedulingGates
	// serviceAccount only mirrors serviceAccountName (Kubernetes' internal
	// type has no such field, so its validation never compares it): an old
	// pod stored with it unset must not fail every later update.
	munged.DeprecatedServiceAccount = old.Spec.DeprecatedServiceAccount
	if og, ng := old.Spec.TerminationGracePeriodSeconds, munged.TerminationGracePeriodSeconds; og != nil && *og < 0 && ng != nil && *ng == 1 {
		munged.TerminationGracePeriodSeconds = og
	}
	if changed := changedSpecFields(munged, &old.Spec); len(changed) > 0 {
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\nchanged: %s",
			strings.Join(updatablePodSpecFields, ","), strings.Join(changed, ", "))))
	}
	return errs
}

// changedSpecFields names the top-level pod spec fields that differ, as a
// short stand-in for the diff Kubernetes prints.
func changedSpecFields(spec, old *corev1.PodSpec) []string {
	var changed []string
	nv, ov := reflect.ValueOf(*spec), reflect.ValueOf(*old)
	for i := range nv.NumField() {
		if equality.Semantic.DeepEqual(nv.Field(i).Interface(), ov.Field(i).Interface()) {
			continue
		}
		name, _, _ := strings.Cut(nv.Type().Field(i).Tag.Get("json"), ",")
		changed = append(changed, "spec."+name)
	}
	return changed
}

// validateOnlyAddedTolerations lets existing tolerations change only their
// tolerationSeconds.
func validateOnlyAddedTolerations(tolerations, old []corev1.Toleration, path *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		for _, t := range tolerations {
			o.TolerationSeconds = t.TolerationSeconds
			if reflect.DeepEqual(o, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(path, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return validateTolerations(tolerations, path)
}

func validateOnlyDeletedSchedulingGates(gates, old []corev1.PodSchedulingGate, path *field.Path) field.ErrorList {
	existing := sets.New[string]()
	for _, g := range old {
		existing.Insert(g.Name)
	}
	var errs field.ErrorList
	for i, g := range gates {
		if !existing.Has(g.Name) {
			errs = append(errs, field.Forbidden(path.Index(i).Child("name"),
				fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return errs
}

// podFields are the field selectors pods answer to.
func podFields(pod *corev1.Pod) fields.Set {
	return fields.Set{
		"spec.nodeName":            pod.Spec.NodeName,
		"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
		"spec.schedulerName":       pod.Spec.SchedulerName,
		"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(pod.Spec.HostNetwork),
		"status.phase":             string(pod.Status.Phase),
		"status.podIP":             podIP(pod),
		"status.nominatedNodeName": pod.Status.NominatedNodeName,
	}
}

// podIP is the pod's primary IP.
func podIP(pod *corev1.Pod) string {
	if len(pod.Status.PodIPs) > 0 {
		return pod.Status.PodIPs[0].IP
	}
	return pod.Status.PodIP
}

func podCells(pod *corev1.Pod) []any {
	s := summarizePod(pod, time.Now())
	gates := "<none>"
	if n := len(pod.Spec.ReadinessGates); n > 0 {
		met := 0
		for _, g := range pod.Spec.ReadinessGates {
			if c := podCondition(pod, g.ConditionType); c != nil && c.Status == corev1.ConditionTrue {
				met++
			}
		}
		gates = fmt.Sprintf("%d/%d", met, n)
	}
	return []any{s.Ready, s.Status, s.Restarts, age(pod.CreationTimestamp),
		orNone(podIP(pod)), orNone(pod.Spec.NodeName), orNone(pod.Status.NominatedNodeName), gates}
}

// podSummary is what kubectl get pods shows in READY, STATUS and RESTARTS.
type podSummary struct {
	Ready    string // ready containers out of all, sidecars included: "1/2"
	Status   string // e.g. Running, Init:0/1, CrashLoopBackOff, Completed, Terminating
	Restarts string // e.g. "0", "3 (5m ago)"
}

// nodeLostReason is the pod status reason the node lifecycle controller sets
// on pods of an unreachable node.
const nodeLostReason = "NodeLost"

// summarizePod derives the STATUS column as kubectl does: the phase (or the
// status reason), then the first init container still in the way, then the
// reason of the last container that is not running cleanly, and Terminating
// while a deletion is pending.
func summarizePod(pod *corev1.Pod, now time.Time) podSummary {
	total := len(pod.Spec.Containers)
	sidecars := sets.New[string]()
	for _, c := range pod.Spec.InitContainers {
		if isSidecar(&c) {
			sidecars.Insert(c.Name)
			total++
		}
	}

	reason := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	if c := podCondition(pod, corev1.PodScheduled); c != nil && c.Reason == corev1.PodReasonSchedulingGated {
		reason = corev1.PodReasonSchedulingGated
	}

	ready, restarts, sidecarRestarts := 0, 0, 0
	var lastRestart, lastSidecarRestart time.Time
	initializing := false
	for i, cs := range pod.Status.InitContainerStatuses {
		restarts += int(cs.RestartCount)
		lastRestart = later(lastRestart, cs)
		sidecar := sidecars.Has(cs.Name)
		if sidecar {
			sidecarRestarts += int(cs.RestartCount)
			lastSidecarRestart = later(lastSidecarRestart, cs)
		}
		t, w := cs.State.Terminated, cs.State.Waiting
		if t != nil && t.ExitCode == 0 {
			continue
		}
		if sidecar && cs.Started != nil && *cs.Started {
			if cs.Ready {
				ready++
			}
			continue
		}
		initializing = true
		switch {
		case t != nil && t.Reason != "":
			reason = "Init:" + t.Reason
		case t != nil && t.Signal != 0:
			reason = fmt.Sprintf("Init:Signal:%d", t.Signal)
		case t != nil:
			reason = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
		case w != nil && w.Reason != "" && w.Reason != "PodInitializing":
			reason = "Init:" + w.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		break
	}

	if c := podCondition(pod, corev1.PodInitialized); !initializing || (c != nil && c.Status == corev1.ConditionTrue) {
		// Only sidecars keep counting once the pod is initialized.
		restarts, lastRestart = sidecarRestarts, lastSidecarRestart
		running := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := pod.Status.ContainerStatuses[i]
			restarts += int(cs.RestartCount)
			lastRestart = later(lastRestart, cs)
			t, w := cs.State.Terminated, cs.State.Waiting
			switch {
			case w != nil && w.Reason != "":
				reason = w.Reason
			case t != nil && t.Reason != "":
				reason = t.Reason
			case t != nil && t.Signal != 0:
				reason = fmt.Sprintf("Signal:%d", t.Signal)
			case t != nil:
				reason = fmt.Sprintf("ExitCode:%d", t.ExitCode)
			case cs.Ready && cs.State.Running != nil:
				running = true
				ready++
			}
		}
		// A finished container does not make the pod Completed while
		// another still runs.
		if reason == "Completed" && running {
			if c := podCondition(pod, corev1.PodReady); c != nil && c.Status == corev1.ConditionTrue {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	switch {
	case pod.DeletionTimestamp != nil && pod.Status.Reason == nodeLostReason:
		reason = "Unknown"
	case pod.DeletionTimestamp != nil && !terminal:
		reason = "Terminating"
	}

	restartsStr := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		restartsStr = fmt.Sprintf("%d (%s ago)", restarts, humanSince(lastRestart, now))
	}
	return podSummary{Ready: fmt.Sprintf("%d/%d", ready, total), Status: reason, Restarts: restartsStr}
}

// later returns the later of t and when the container last terminated.
func later(t time.Time, cs corev1.ContainerStatus) time.Time {
	if last := cs.LastTerminationState.Terminated; last != nil && t.Before(last.FinishedAt.Time) {
		return last.FinishedAt.Time
	}
	return t
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}
