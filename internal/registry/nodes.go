package registry

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func nodes() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "nodes"},
		Kind:                 "Node",
		SingularName:         "node",
		Namespaced:           false,
		ShortNames:           []string{"no"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.Node{} },
		NewList:              func() runtime.Object { return &corev1.NodeList{} },
		Status:               true,
		// The agent registers its node with the status it observed, so
		// create keeps the status (there is no PrepareForCreate).
		Default:  func(obj runtime.Object) { defaultNode(obj.(*corev1.Node)) },
		Validate: func(obj runtime.Object) field.ErrorList { return validateNode(obj.(*corev1.Node)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateNodeUpdate(obj.(*corev1.Node), old.(*corev1.Node))
		},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"spec.unschedulable": strconv.FormatBool(obj.(*corev1.Node).Spec.Unschedulable)}
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Status", "string", "The status of the node"),
				column("Roles", "string", "The roles of the node"),
				ageColumn(),
				column("Version", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]),
				wideColumn("Internal-IP", "string", corev1.NodeStatus{}.SwaggerDoc()["addresses"]),
				wideColumn("External-IP", "string", corev1.NodeStatus{}.SwaggerDoc()["addresses"]),
				wideColumn("OS-Image", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]),
				wideColumn("Kernel-Version", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]),
				wideColumn("Container-Runtime", "string", corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]),
			},
			Cells: func(obj runtime.Object) []any { return nodeCells(obj.(*corev1.Node)) },
		},
	}
}

// defaultNode makes allocatable default to capacity and keeps podCIDR and
// podCIDRs in step, as the v1 conversion does.
func defaultNode(node *corev1.Node) {
	if node.Status.Allocatable == nil && node.Status.Capacity != nil {
		node.Status.Allocatable = node.Status.Capacity.DeepCopy()
	}
	switch {
	case node.Spec.PodCIDR != "" && len(node.Spec.PodCIDRs) == 0:
		node.Spec.PodCIDRs = []string{node.Spec.PodCIDR}
	case node.Spec.PodCIDR == "" && len(node.Spec.PodCIDRs) > 0:
		node.Spec.PodCIDR = node.Spec.PodCIDRs[0]
	}
}

func validateNode(node *corev1.Node) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := validateObjectMeta(&node.ObjectMeta, false, nameIsDNSSubdomain)
	errs = append(errs, validateTaints(node.Spec.Taints, specPath.Child("taints"))...)

	cidrsPath := specPath.Child("podCIDRs")
	for i, cidr := range node.Spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(cidrsPath.Index(i), cidr)...)
	}
	if len(node.Spec.PodCIDRs) > 2 {
		errs = append(errs, field.Invalid(cidrsPath, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	if len(node.Spec.PodCIDRs) == 2 && strings.Contains(node.Spec.PodCIDRs[0], ":") == strings.Contains(node.Spec.PodCIDRs[1], ":") {
		errs = append(errs, field.Invalid(cidrsPath, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	if len(node.Spec.PodCIDRs) > 0 && node.Spec.PodCIDR != node.Spec.PodCIDRs[0] {
		errs = append(errs, field.Invalid(specPath.Child("podCIDR"), node.Spec.PodCIDR, "must match the first element of podCIDRs"))
	}

	statusPath := field.NewPath("status")
	for _, rl := range []struct {
		name string
		list corev1.ResourceList
	}{{"capacity", node.Status.Capacity}, {"allocatable", node.Status.Allocatable}} {
		for _, name := range sortedResourceNames(rl.list) {
			if q := rl.list[name]; q.Sign() < 0 {
				errs = append(errs, field.Invalid(statusPath.Child(rl.name).Key(string(name)), q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	return errs
}

var nodeTaintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

// validateTaints checks taint keys, values and effects, and that each
// key-effect pair appears once.
func validateTaints(taints []corev1.Taint, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, t := range taints {
		p := path.Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, strings.Join(msgs, ";")))
		}
		errs = append(errs, validateOneOf(p.Child("effect"), t.Effect, nodeTaintEffects...)...)
		key := t.Key + ":" + string(t.Effect)
		if seen.Has(key) {
			dup := field.Duplicate(p, t)
			dup.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, dup)
		}
		seen.Insert(key)
	}
	return errs
}

// validateNodeUpdate lets podCIDRs and providerID be set once, never changed.
func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := validateObjectMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)
	if len(old.Spec.PodCIDRs) > 0 && !slices.Equal(node.Spec.PodCIDRs, old.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(specPath.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && node.Spec.ProviderID != old.Spec.ProviderID {
		errs = append(errs, field.Forbidden(specPath.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

func nodeCells(node *corev1.Node) []any {
	var status []string
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			status = append(status, "Ready")
		} else {
			status = append(status, "NotReady")
		}
		break
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if node.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	info := node.Status.NodeInfo
	return []any{
		strings.Join(status, ","), orNone(strings.Join(nodeRoles(node), ",")), age(node.CreationTimestamp), info.KubeletVersion,
		nodeAddress(node, corev1.NodeInternalIP), nodeAddress(node, corev1.NodeExternalIP),
		orUnknown(info.OSImage), orUnknown(info.KernelVersion), orUnknown(info.ContainerRuntimeVersion),
	}
}

// nodeRoles reads roles from node-role.kubernetes.io/<role> labels and the
// older kubernetes.io/role=<role>, sorted.
func nodeRoles(node *corev1.Node) []string {
	roles := sets.New[string]()
	for k, v := range node.Labels {
		if role, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && role != "" {
			roles.Insert(role)
		} else if k == "kubernetes.io/role" && v != "" {
			roles.Insert(v)
		}
	}
	return sets.List(roles)
}

// nodeAddress is the node's first address of type t, or "<none>".
func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}
