package registry

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	settingsv1alpha1 "github.com/skiff-sh/skiff/pkg/apis/settings/v1alpha1"
)

// TestTablesHaveOneCellPerColumn renders an empty object of each core
// resource: every row must line up with its columns.
func TestTablesHaveOneCellPerColumn(t *testing.T) {
	for _, r := range []*Resource{
		pods(), namespaces(), nodes(), services(), endpoints(), configmaps(), secrets(),
		serviceaccounts(), events(), persistentvolumes(), persistentvolumeclaims(), podpresets(),
	} {
		t.Run(r.Resource, func(t *testing.T) {
			if r.Table == nil {
				t.Fatal("no table")
			}
			obj := r.New()
			if r.Default != nil {
				r.Default(obj)
			}
			if got, want := len(r.Table.Cells(obj)), len(r.Table.Columns); got != want {
				t.Errorf("%d cells for %d columns", got, want)
			}
			for _, c := range r.Table.Columns {
				if c.Description == "" || c.Type == "" {
					t.Errorf("column %q lacks a type or description", c.Name)
				}
			}
		})
	}
}

func TestNamespaceLifecycleDefaults(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	defaultNamespace(ns)
	prepareNamespaceForCreate(ns)
	if ns.Labels[corev1.LabelMetadataName] != "team-a" {
		t.Errorf("labels = %v, want the metadata.name label", ns.Labels)
	}
	if ns.Status.Phase != corev1.NamespaceActive {
		t.Errorf("phase = %s, want Active", ns.Status.Phase)
	}
	if len(ns.Spec.Finalizers) != 1 || ns.Spec.Finalizers[0] != corev1.FinalizerKubernetes {
		t.Errorf("finalizers = %v, want [kubernetes]", ns.Spec.Finalizers)
	}
	wantErrors(t, validateNamespace(ns))

	bad := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team.a", Namespace: "x"}}
	wantErrors(t, validateNamespace(bad), "FieldValueInvalid metadata.name", "FieldValueForbidden metadata.namespace")
}

func TestSecretStringDataFoldsIntoData(t *testing.T) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"},
		Data:       map[string][]byte{"user": []byte("old"), "keep": []byte("k")},
		StringData: map[string]string{"user": "admin"},
	}
	defaultSecret(s)
	if s.Type != corev1.SecretTypeOpaque || s.StringData != nil || string(s.Data["user"]) != "admin" || string(s.Data["keep"]) != "k" {
		t.Errorf("secret = %+v", s)
	}
	wantErrors(t, validateSecret(s))

	s.Data["bad key"] = nil
	wantErrors(t, validateSecret(s), "FieldValueInvalid data[bad key]")

	tls := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default"}, Type: corev1.SecretTypeTLS}
	wantErrors(t, validateSecret(tls), "FieldValueRequired data[tls.crt]", "FieldValueRequired data[tls.key]")
}

func TestImmutableConfigMapAndSecretRejectChanges(t *testing.T) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default", ResourceVersion: "1"},
		Data:       map[string]string{"a": "1"},
		Immutable:  new(true),
	}
	changed := cm.DeepCopy()
	changed.Data["a"] = "2"
	wantErrors(t, validateConfigMapUpdate(changed, cm), "FieldValueForbidden data")
	relabelled := cm.DeepCopy()
	relabelled.Labels = map[string]string{"x": "y"}
	wantErrors(t, validateConfigMapUpdate(relabelled, cm))

	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default", ResourceVersion: "1"},
		Type:       corev1.SecretTypeOpaque,
		Immutable:  new(true),
	}
	mutable := s.DeepCopy()
	mutable.Immutable = new(false)
	mutable.Type = corev1.SecretTypeBasicAuth
	wantErrors(t, validateSecretUpdate(mutable, s), "FieldValueInvalid type", "FieldValueForbidden immutable")
}

func TestConfigMapKeysMustBeFileNames(t *testing.T) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"},
		Data:       map[string]string{"ok.conf": "", "a/b": ""},
		BinaryData: map[string][]byte{"ok.conf": nil},
	}
	wantErrors(t, validateConfigMap(cm), "FieldValueInvalid data[a/b]", "FieldValueInvalid data[ok.conf]")
}

func TestNodeCells(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{
			"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "", "kubernetes.io/hostname": "n1",
		}},
		Spec: corev1.NodeSpec{Unschedulable: true},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian"},
		},
	}
	got := nodeCells(node)
	want := []any{"NotReady,SchedulingDisabled", "control-plane,master", "<unknown>", "v1.37.2", "192.168.1.10", "<none>", "Debian", "<unknown>", "<unknown>"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d = %v, want %v", i, got[i], want[i])
		}
	}

	bare := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}
	if got := nodeCells(bare); got[0] != "Unknown" || got[1] != "<none>" {
		t.Errorf("status, roles = %v, %v; want Unknown, <none>", got[0], got[1])
	}
}

func TestNodePodCIDRIsSetOnce(t *testing.T) {
	old := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "1"}}
	set := old.DeepCopy()
	set.Spec.PodCIDR = "10.42.0.0/24"
	defaultNode(set)
	wantErrors(t, validateNode(set))
	wantErrors(t, validateNodeUpdate(set, old))

	changed := set.DeepCopy()
	changed.Spec.PodCIDR, changed.Spec.PodCIDRs = "10.42.1.0/24", []string{"10.42.1.0/24"}
	wantErrors(t, validateNodeUpdate(changed, set), "FieldValueForbidden spec.podCIDRs")
}

func newClaim() *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", ResourceVersion: "1"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("1Gi"),
			}},
		},
	}
	persistentvolumeclaims().Default(pvc)
	return pvc
}

func TestPersistentVolumeClaimSpecIsImmutableButForGrowth(t *testing.T) {
	claim := newClaim()
	if *claim.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || claim.Status.Phase != corev1.ClaimPending {
		t.Fatalf("defaults: mode %v, phase %v", *claim.Spec.VolumeMode, claim.Status.Phase)
	}
	wantErrors(t, persistentvolumeclaims().Validate(claim))

	bound := claim.DeepCopy()
	bound.Spec.VolumeName = "pv-1"
	bound.Status = corev1.PersistentVolumeClaimStatus{
		Phase:    corev1.ClaimBound,
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
	}
	wantErrors(t, validatePersistentVolumeClaimUpdate(bound, claim))

	grown := bound.DeepCopy()
	grown.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	wantErrors(t, validatePersistentVolumeClaimUpdate(grown, bound))

	shrunk := bound.DeepCopy()
	shrunk.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("512Mi")
	wantErrors(t, validatePersistentVolumeClaimUpdate(shrunk, bound), "FieldValueForbidden spec.resources.requests.storage")

	remoded := bound.DeepCopy()
	remoded.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	wantErrors(t, validatePersistentVolumeClaimUpdate(remoded, bound), "FieldValueForbidden spec")

	unbound := claim.DeepCopy()
	unbound.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("5Gi")
	wantErrors(t, validatePersistentVolumeClaimUpdate(unbound, claim), "FieldValueForbidden spec")
}

func TestPersistentVolumeValidationAndTable(t *testing.T) {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1", CreationTimestamp: metav1.NewTime(time.Now().Add(-2 * time.Minute))},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/pv-1"}},
			ClaimRef:               &corev1.ObjectReference{Namespace: "default", Name: "data"},
			StorageClassName:       "local",
		},
	}
	r := persistentvolumes()
	r.Default(pv)
	r.PrepareForCreate(pv)
	wantErrors(t, r.Validate(pv))
	got := r.Table.Cells(pv)
	want := []any{"5Gi", "RWO,RWX", "Retain", "Pending", "default/data", "local", "<unset>", "", "2m", "Filesystem"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %s = %v, want %v", r.Table.Columns[i].Name, got[i], want[i])
		}
	}

	noSource := pv.DeepCopy()
	noSource.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{}
	noSource.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadWriteOnce}
	wantErrors(t, r.Validate(noSource), "FieldValueForbidden spec.accessModes", "FieldValueRequired spec")

	pv.ResourceVersion = "1"
	moved := pv.DeepCopy()
	moved.Spec.HostPath.Path = "/elsewhere"
	wantErrors(t, r.ValidateUpdate(moved, pv), "FieldValueForbidden spec.persistentvolumesource")
}

func TestEventCellsAndFields(t *testing.T) {
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "u1", FieldPath: "spec.containers{app}"},
		Reason:         "Pulled",
		Message:        "Successfully pulled image\n",
		Type:           corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "kubelet", Host: "n1"},
		FirstTimestamp: metav1.NewTime(time.Now().Add(-10 * time.Minute)),
		LastTimestamp:  metav1.NewTime(time.Now().Add(-time.Minute)),
		Count:          3,
	}
	wantErrors(t, events().Validate(ev))
	got := eventCells(ev)
	want := []any{"60s", "Normal", "Pulled", "pod/web", "spec.containers{app}", "kubelet, n1", "Successfully pulled image", "10m", int64(3), "web.1"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d = %#v, want %#v", i, got[i], want[i])
		}
	}
	f := eventFields(ev)
	if f["involvedObject.name"] != "web" || f["involvedObject.uid"] != "u1" || f["source"] != "kubelet" || f["type"] != "Normal" {
		t.Errorf("fields = %v", f)
	}

	elsewhere := ev.DeepCopy()
	elsewhere.Namespace = "kube-system"
	wantErrors(t, events().Validate(elsewhere), "FieldValueInvalid involvedObject.namespace")
}

func TestEndpointsDefaultsAndColumn(t *testing.T) {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.42.0.1"}, {IP: "10.42.0.2"}, {IP: "10.42.0.3"}, {IP: "10.42.0.4"}},
			Ports:     []corev1.EndpointPort{{Port: 80}},
		}},
	}
	r := endpoints()
	r.Default(ep)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("protocol = %q, want TCP", ep.Subsets[0].Ports[0].Protocol)
	}
	wantErrors(t, r.Validate(ep))
	if got, want := formatEndpoints(ep), "10.42.0.1:80,10.42.0.2:80,10.42.0.3:80 + 1 more..."; got != want {
		t.Errorf("endpoints = %q, want %q", got, want)
	}
	ep.Subsets[0].Addresses[0].IP = "127.0.0.1"
	wantErrors(t, r.Validate(ep), "FieldValueInvalid subsets[0].addresses[0].ip")
}

func TestPodPresetValidation(t *testing.T) {
	pp := &settingsv1alpha1.PodPreset{
		ObjectMeta: metav1.ObjectMeta{Name: "proxy", Namespace: "default"},
		Spec: settingsv1alpha1.PodPresetSpec{
			Selector:     metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}},
			Env:          []corev1.EnvVar{{Name: "PROXY", Value: "http://proxy:3128"}},
			Volumes:      []corev1.Volume{{Name: "cache"}},
			VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}},
		},
	}
	r := podpresets()
	r.Default(pp)
	if pp.Spec.Volumes[0].EmptyDir == nil {
		t.Errorf("volume without source not defaulted to emptyDir")
	}
	wantErrors(t, r.Validate(pp))

	bad := pp.DeepCopy()
	bad.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}
	bad.Spec.VolumeMounts[0].Name = "missing"
	wantErrors(t, r.Validate(bad), "FieldValueInvalid spec.selector.matchExpressions[0].operator", "FieldValueNotFound spec.volumeMounts[0].name")

	empty := &settingsv1alpha1.PodPreset{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: "default"}}
	wantErrors(t, r.Validate(empty), "FieldValueRequired spec.volumes.env.envFrom.volumeMounts")
}

func TestPodTemplateValidationUsesTemplatePaths(t *testing.T) {
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
	defaultPodSpec(&tmpl.Spec)
	path := field.NewPath("spec", "template")
	wantErrors(t, validatePodTemplateSpec(tmpl, path))

	tmpl.Spec.Containers[0].Image = ""
	tmpl.Labels["bad key!"] = "x"
	wantErrors(t, validatePodTemplateSpec(tmpl, path),
		"FieldValueInvalid spec.template.labels", "FieldValueRequired spec.template.spec.containers[0].image")
}
