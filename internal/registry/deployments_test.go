package registry

import (
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Fixtures and helpers shared by the tests of the apps, batch and other
// non-core resources.

// webTemplate is a minimal valid pod template labelled app=web.
func webTemplate(restart corev1.RestartPolicy) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			RestartPolicy: restart,
			Containers:    []corev1.Container{{Name: "web", Image: "nginx:1.27"}},
		},
	}
}

func webSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
}

// testMeta is the metadata the API server has filled in by validation time.
func testMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: "7d5a0c1e-0000-4000-8000-000000000001", ResourceVersion: "1"}
}

func testDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: testMeta("web"),
		Spec:       appsv1.DeploymentSpec{Selector: webSelector(), Template: webTemplate(corev1.RestartPolicyAlways)},
	}
}

func testReplicaSet() *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: testMeta("web-5d4f8"),
		Spec:       appsv1.ReplicaSetSpec{Selector: webSelector(), Template: webTemplate(corev1.RestartPolicyAlways)},
	}
}

func testDaemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: testMeta("agent"),
		Spec:       appsv1.DaemonSetSpec{Selector: webSelector(), Template: webTemplate(corev1.RestartPolicyAlways)},
	}
}

// createErrors runs an object through the create hooks in the API server's
// order and returns what validation reports.
func createErrors(r *Resource, obj runtime.Object) field.ErrorList {
	if r.Default != nil {
		r.Default(obj)
	}
	if r.PrepareForCreate != nil {
		r.PrepareForCreate(obj)
	}
	return r.Validate(obj)
}

// updateErrors runs an update through the hooks: defaults, then both
// validations.
func updateErrors(r *Resource, obj, old runtime.Object) field.ErrorList {
	if r.Default != nil {
		r.Default(obj)
		r.Default(old)
	}
	errs := r.Validate(obj)
	if r.ValidateUpdate != nil {
		errs = append(errs, r.ValidateUpdate(obj, old)...)
	}
	return errs
}

// findFieldError returns the error at path whose message contains detail.
func findFieldError(errs field.ErrorList, path string, typ field.ErrorType, detail string) *field.Error {
	for _, e := range errs {
		if e.Field == path && e.Type == typ && strings.Contains(e.Error(), detail) {
			return e
		}
	}
	return nil
}

// checkCase is one expected validation error.
type checkCase struct {
	name   string
	r      *Resource
	obj    runtime.Object
	path   string
	typ    field.ErrorType
	detail string
}

func runCheckCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := createErrors(tc.r, tc.obj)
			if findFieldError(errs, tc.path, tc.typ, tc.detail) == nil {
				t.Errorf("want %s error at %s containing %q, got %v", tc.typ, tc.path, tc.detail, errs)
			}
		})
	}
}

func TestValidWorkloadsPassValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *Resource
		obj  runtime.Object
	}{
		{"deployment", deployments(), testDeployment()},
		{"replicaset", replicasets(), testReplicaSet()},
		{"statefulset", statefulsets(), testStatefulSet()},
		{"daemonset", daemonsets(), testDaemonSet()},
		{"job", jobs(), testJob()},
		{"cronjob", cronjobs(), testCronJob()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if errs := createErrors(tc.r, tc.obj); len(errs) > 0 {
				t.Errorf("valid %s rejected: %v", tc.name, errs)
			}
		})
	}
}

func TestDeploymentDefaultsMatchAppsV1(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: webTemplate(corev1.RestartPolicyAlways)}}
	deployments().Default(d)

	want := appsv1.DeploymentSpec{
		Replicas: new(int32(1)),
		Strategy: appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: new(intstr.FromString("25%")),
				MaxSurge:       new(intstr.FromString("25%")),
			},
		},
		RevisionHistoryLimit:    new(int32(10)),
		ProgressDeadlineSeconds: new(int32(600)),
	}
	got := d.Spec
	got.Template = corev1.PodTemplateSpec{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaulted spec:\n got %+v\nwant %+v", got, want)
	}

	// Recreate deployments get no rolling-update parameters.
	r := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	deployments().Default(r)
	if r.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate got rollingUpdate %+v", r.Spec.Strategy.RollingUpdate)
	}
}

func TestReplicaSetAndDaemonSetDefaults(t *testing.T) {
	rs := &appsv1.ReplicaSet{}
	replicasets().Default(rs)
	if rs.Spec.Replicas == nil || *rs.Spec.Replicas != 1 {
		t.Errorf("replicaset replicas = %v, want 1", rs.Spec.Replicas)
	}

	ds := &appsv1.DaemonSet{}
	daemonsets().Default(ds)
	s := ds.Spec.UpdateStrategy
	if s.Type != appsv1.RollingUpdateDaemonSetStrategyType || s.RollingUpdate == nil ||
		*s.RollingUpdate.MaxUnavailable != intstr.FromInt32(1) || *s.RollingUpdate.MaxSurge != intstr.FromInt32(0) {
		t.Errorf("daemonset strategy = %+v, want RollingUpdate maxUnavailable 1 maxSurge 0", s)
	}
	if ds.Spec.RevisionHistoryLimit == nil || *ds.Spec.RevisionHistoryLimit != 10 {
		t.Errorf("daemonset revisionHistoryLimit = %v, want 10", ds.Spec.RevisionHistoryLimit)
	}
}

func TestWorkloadValidationReportsKubernetesPaths(t *testing.T) {
	mismatched := testDeployment()
	mismatched.Spec.Template.Labels = map[string]string{"app": "other"}

	noSelector := testDeployment()
	noSelector.Spec.Selector = nil

	never := testDeployment()
	never.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever

	stuck := testDeployment()
	stuck.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{
		MaxUnavailable: new(intstr.FromInt32(0)), MaxSurge: new(intstr.FromString("0%")),
	}

	negative := testDeployment()
	negative.Spec.Replicas = new(int32(-1))

	badStrategy := testDeployment()
	badStrategy.Spec.Strategy.Type = "BlueGreen"

	emptySelector := testReplicaSet()
	emptySelector.Spec.Selector = &metav1.LabelSelector{}

	both := testDaemonSet()
	both.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{
		MaxUnavailable: new(intstr.FromInt32(1)), MaxSurge: new(intstr.FromInt32(1)),
	}

	onFailure := testDaemonSet()
	onFailure.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure

	runCheckCases(t, []checkCase{
		{"selector must match template labels", deployments(), mismatched,
			"spec.template.metadata.labels", field.ErrorTypeInvalid, "`selector` does not match template `labels`"},
		{"selector is required", deployments(), noSelector, "spec.selector", field.ErrorTypeRequired, ""},
		{"deployment pods restart always", deployments(), never,
			"spec.template.spec.restartPolicy", field.ErrorTypeNotSupported, `Unsupported value: "Never": supported values: "Always"`},
		{"rolling update must make progress", deployments(), stuck,
			"spec.strategy.rollingUpdate.maxUnavailable", field.ErrorTypeInvalid, "may not be 0 when `maxSurge` is 0"},
		{"replicas not negative", deployments(), negative, "spec.replicas", field.ErrorTypeInvalid, "must be greater than or equal to 0"},
		{"strategy type", deployments(), badStrategy, "spec.strategy", field.ErrorTypeNotSupported, `"Recreate", "RollingUpdate"`},
		{"empty selector", replicasets(), emptySelector, "spec.selector", field.ErrorTypeInvalid, "empty selector is invalid for deployment"},
		{"daemonset surges or drains, not both", daemonsets(), both,
			"spec.updateStrategy.rollingUpdate.maxSurge", field.ErrorTypeInvalid, "may not be set when maxUnavailable is non-zero"},
		{"daemonset pods restart always", daemonsets(), onFailure,
			"spec.template.spec.restartPolicy", field.ErrorTypeNotSupported, `supported values: "Always"`},
	})
}

func TestWorkloadSelectorIsImmutable(t *testing.T) {
	otherSelector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}
	otherLabels := map[string]string{"app": "web", "tier": "front"}

	for _, tc := range []struct {
		name     string
		r        *Resource
		old, obj runtime.Object
	}{
		{"deployment", deployments(), testDeployment(), func() runtime.Object {
			d := testDeployment()
			d.Spec.Selector, d.Spec.Template.Labels = otherSelector, otherLabels
			return d
		}()},
		{"replicaset", replicasets(), testReplicaSet(), func() runtime.Object {
			rs := testReplicaSet()
			rs.Spec.Selector, rs.Spec.Template.Labels = otherSelector, otherLabels
			return rs
		}()},
		{"daemonset", daemonsets(), testDaemonSet(), func() runtime.Object {
			ds := testDaemonSet()
			ds.Spec.Selector, ds.Spec.Template.Labels = otherSelector, otherLabels
			return ds
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := updateErrors(tc.r, tc.obj, tc.old)
			if findFieldError(errs, "spec.selector", field.ErrorTypeInvalid, "field is immutable") == nil {
				t.Errorf("selector change accepted: %v", errs)
			}
			unchanged := tc.old.DeepCopyObject()
			if errs := updateErrors(tc.r, unchanged, tc.old); len(errs) > 0 {
				t.Errorf("unchanged update rejected: %v", errs)
			}
		})
	}
}

func TestDeploymentScaleReadsAndSetsReplicas(t *testing.T) {
	d := testDeployment()
	d.Spec.Replicas = new(int32(3))
	d.Status.Replicas = 2
	scale := deployments().Scale

	spec, status, selector := scale.Get(d)
	if spec != 3 || status != 2 || selector != "app=web" {
		t.Errorf("Get = %d, %d, %q; want 3, 2, \"app=web\"", spec, status, selector)
	}
	scale.SetReplicas(d, 5)
	if *d.Spec.Replicas != 5 {
		t.Errorf("replicas after SetReplicas(5) = %d", *d.Spec.Replicas)
	}
}

func TestDeploymentTableCells(t *testing.T) {
	d := testDeployment()
	d.CreationTimestamp = metav1.NewTime(time.Now().Add(-5 * time.Hour))
	d.Spec.Replicas = new(int32(3))
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "envoy:1.30"})
	d.Status = appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2}

	table := deployments().Table
	got := table.Cells(d)
	want := []any{"2/3", int64(3), int64(2), "5h", "web,sidecar", "nginx:1.27,envoy:1.30", "app=web"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v\nwant %#v", got, want)
	}
	var names []string
	for _, c := range table.Columns {
		names = append(names, c.Name)
	}
	if want := "Ready Up-to-date Available Age Containers Images Selector"; strings.Join(names, " ") != want {
		t.Errorf("columns = %v, want %s", names, want)
	}
}

func TestReplicaSetCountsInTable(t *testing.T) {
	rs := testReplicaSet()
	rs.Spec.Replicas = new(int32(4))
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1}
	got := replicasets().Table.Cells(rs)[:3]
	if want := []any{int64(4), int64(3), int64(1)}; !reflect.DeepEqual(got, want) {
		t.Errorf("desired/current/ready = %#v, want %#v", got, want)
	}
}

// TestWorkloadAndClusterTablesHaveOneCellPerColumn guards the column lists against drifting
// from the cells, for every resource of this group, including the least
// filled-in objects the API can hold.
func TestWorkloadAndClusterTablesHaveOneCellPerColumn(t *testing.T) {
	for _, r := range []*Resource{
		deployments(), replicasets(), statefulsets(), daemonsets(), controllerrevisions(),
		jobs(), cronjobs(), leases(), endpointslices(), eventsV1(), storageclasses(),
	} {
		t.Run(r.Resource, func(t *testing.T) {
			obj := r.New()
			if r.Default != nil {
				r.Default(obj)
			}
			if got, want := len(r.Table.Cells(obj)), len(r.Table.Columns); got != want {
				t.Errorf("%d cells for %d columns", got, want)
			}
			for _, c := range r.Table.Columns {
				if c.Name == "" || c.Type == "" || c.Description == "" {
					t.Errorf("incomplete column %+v", c)
				}
			}
		})
	}
}

func TestDeploymentAndReplicaSetStatusWritesAreValidated(t *testing.T) {
	d := deployments()
	oldD := &appsv1.Deployment{Status: appsv1.DeploymentStatus{CollisionCount: new(int32(1))}}
	if errs := d.ValidateStatus(&appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, CollisionCount: new(int32(1))}}, oldD); len(errs) > 0 {
		t.Errorf("a consistent deployment status: %v", errs)
	}
	errs := d.ValidateStatus(&appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 2}}, oldD)
	if len(errs) != 2 || errs[0].Field != "status.updatedReplicas" || errs[1].Field != "status.collisionCount" {
		t.Errorf("deployment errors %v, want updatedReplicas over replicas and a dropped collisionCount", errs)
	}
	rs := replicasets()
	errs = rs.ValidateStatus(&appsv1.ReplicaSet{Status: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1, AvailableReplicas: 2}}, &appsv1.ReplicaSet{})
	if len(errs) != 1 || errs[0].Field != "status.availableReplicas" || errs[0].Detail != "cannot be greater than readyReplicas" {
		t.Errorf("replicaset errors %v, want available over ready", errs)
	}
}
