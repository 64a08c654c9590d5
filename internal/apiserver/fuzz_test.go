package apiserver

import (
	"bytes"
	"errors"
	"io"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/registry"
)

// decodeTarget is what one request body is decoded into: a resource's own
// kind, or the kind a subresource or review takes.
type decodeTarget struct {
	res *registry.Resource
	gvk schema.GroupVersionKind
	new func() runtime.Object
	// own is true for the resource's kind: it is then defaulted and
	// validated as create and update would.
	own bool
	// deleteOptions decodes the body as DeleteOptions instead.
	deleteOptions bool
}

func decodeTargets(s *Server) []decodeTarget {
	var out []decodeTarget
	for _, r := range registry.All() {
		out = append(out, decodeTarget{res: r, gvk: r.GroupVersionKind(), new: r.New, own: true})
	}
	pods, deploys := resourceOf(s, "", "pods"), resourceOf(s, "apps", "deployments")
	return append(out,
		decodeTarget{res: deploys, gvk: scaleGVK, new: func() runtime.Object { return &autoscalingv1.Scale{} }},
		decodeTarget{res: pods, gvk: corev1.SchemeGroupVersion.WithKind("Binding"), new: func() runtime.Object { return &corev1.Binding{} }},
		decodeTarget{res: pods, gvk: policyv1.SchemeGroupVersion.WithKind("Eviction"), new: func() runtime.Object { return &policyv1.Eviction{} }},
		decodeTarget{res: pods, gvk: authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview"), new: func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} }},
		decodeTarget{res: pods, deleteOptions: true},
	)
}

var (
	fuzzMedia            = []string{mediaJSON, mediaYAML, mediaProtobuf, "", mediaJSON + "; charset=utf-8", "text/plain"}
	fuzzFieldValidations = []string{"Strict", "Warn", "Ignore", ""}
	fuzzPatchTypes       = []types.PatchType{types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType}
)

// index maps a fuzzed byte onto n choices.
func index(b uint8, n int) int { return int(b) % n }

// wantClientError fails unless err is a Status with a 4xx code: anything
// else would reach the client as a 500 or not as a Status at all.
func wantClientError(t *testing.T, what string, err error) {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("%s: error %T %q is not a Status", what, err, err)
	}
	if c := se.ErrStatus.Code; c < 400 || c >= 500 || se.ErrStatus.Message == "" {
		t.Fatalf("%s: Status %d %q, want a 4xx with a message", what, c, se.ErrStatus.Message)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	s := newDecodeServer()
	targets := decodeTargets(s)
	targetOf := map[string]uint8{}
	for i, tg := range targets {
		if tg.deleteOptions {
			targetOf["DeleteOptions"] = uint8(i)
		} else if _, ok := targetOf[tg.gvk.Kind]; !ok {
			targetOf[tg.gvk.Kind] = uint8(i)
		}
	}
	media := map[string]uint8{mediaJSON: 0, mediaYAML: 1, mediaProtobuf: 2}
	pt := map[types.PatchType]uint8{types.JSONPatchType: 0, types.MergePatchType: 1, types.StrategicMergePatchType: 2}
	proto := func(obj runtime.Object) []byte {
		var b bytes.Buffer
		if err := s.codecs.proto.Serializer.Encode(obj, &b); err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	labels := map[string]string{"app": "a"}
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}}}
	deploy := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: "d"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod.Spec}}}
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "c"},
		Data: map[string]string{"k": "v"}, BinaryData: map[string][]byte{"b": {0, 255}}}
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}}

	type seed struct {
		kind  string
		media string
		fv    uint8
		body  string
		pt    types.PatchType
		patch string
	}
	seeds := []seed{
		{"ConfigMap", mediaJSON, 0, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}}`, types.MergePatchType, `{"data":{"k":null,"n":"m"}}`},
		{"ConfigMap", mediaJSON, 1, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","name":"d"},"foo":1}`, types.JSONPatchType, `[{"op":"add","path":"/data","value":{"a":"b"}},{"op":"test","path":"/data/a","value":"b"}]`},
		{"ConfigMap", mediaYAML, 0, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n", types.JSONPatchType, `[{"op":"copy","from":"/data","path":"/binaryData"}]`},
		{"ConfigMap", mediaYAML, 0, "a: &a [*a, *a]\n", types.MergePatchType, `{}`},
		{"ConfigMap", mediaYAML, 2, "metadata: [\n", types.MergePatchType, `{`},
		{"ConfigMap", mediaProtobuf, 0, string(proto(cm)), types.StrategicMergePatchType, `{"metadata":{"labels":{"$patch":"replace","a":"b"}}}`},
		{"ConfigMap", mediaProtobuf, 0, "k8s\x00\x0a\xff\xff\xff\xff\x0f", types.JSONPatchType, `[{"op":"move","from":"/data","path":"/data/x"}]`},
		{"ConfigMap", mediaJSON, 0, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}`, types.JSONPatchType, `[]`},
		{"ConfigMap", mediaJSON, 0, ``, types.JSONPatchType, `[{"op":"remove","path":"/metadata/name"}]`},
		{"Pod", mediaJSON, 0, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`, types.StrategicMergePatchType, `{"spec":{"containers":[{"name":"c","$patch":"delete"}]}}`},
		{"Pod", mediaJSON, 1, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{}}`, types.StrategicMergePatchType, `{"spec":{"$setElementOrder/containers":[{"name":"z"}],"containers":[{"name":"z","image":"i"}]}}`},
		{"Pod", mediaProtobuf, 0, string(proto(pod)), types.StrategicMergePatchType, `{"spec":{"$retainKeys":["containers"],"containers":[{"name":"c","image":"j"}]}}`},
		// Found by this fuzzer: strategicpatch panicked on $retainKeys of objects.
		{"Pod", mediaProtobuf, 0, string(proto(pod)), types.StrategicMergePatchType, `{"spec":{"$retainKeys":[{}]}}`},
		{"Pod", mediaJSON, 0, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"1e100000"}}}],"volumes":[{"name":"v","projected":{"sources":[{}]}}]}}`, types.MergePatchType, `{"spec":{"containers":null}}`},
		{"Deployment", mediaJSON, 0, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{}}`, types.MergePatchType, `{"spec":{"selector":{"matchExpressions":[{"key":"a","operator":"Bogus"}]}}}`},
		{"Deployment", mediaProtobuf, 0, string(proto(deploy)), types.JSONPatchType, `[{"op":"replace","path":"/spec/strategy","value":{"type":"Recreate","rollingUpdate":{}}}]`},
		{"Deployment", mediaYAML, 0, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: -1\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: \"abc%\"}}\n", types.StrategicMergePatchType, `{"spec":{"template":{"spec":{"containers":[{"name":"x"}]}}}}`},
		{"Service", mediaProtobuf, 0, string(proto(svc)), types.StrategicMergePatchType, `{"spec":{"ports":[{"port":81,"$patch":"merge"}]}}`},
		{"Service", mediaJSON, 0, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"type":"NodePort","ports":[{"port":0,"nodePort":99999}],"clusterIP":"bad"}}`, types.MergePatchType, `{"spec":{"type":"ExternalName"}}`},
		{"Namespace", mediaJSON, 0, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"Bad_Name","finalizers":["x"]}}`, types.MergePatchType, `{"spec":{"finalizers":["kubernetes"]}}`},
		{"Node", mediaJSON, 0, `{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDRs":["x","y","z"],"taints":[{"key":"","effect":"Bad"}]}}`, types.MergePatchType, `{"status":{"capacity":{"cpu":"-1"}}}`},
		{"Job", mediaJSON, 0, `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"completions":-1,"parallelism":1,"completionMode":"Indexed","template":{"spec":{"restartPolicy":"Always","containers":[{"name":"c","image":"i"}]}}}}`, types.MergePatchType, `{"spec":{"suspend":true}}`},
		{"CronJob", mediaJSON, 0, `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"schedule":"* * * * * * *","timeZone":"Mars/Base","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"i"}]}}}}}}`, types.MergePatchType, `{"spec":{"schedule":"@every 1s"}}`},
		{"StatefulSet", mediaJSON, 0, `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s"},"spec":{"volumeClaimTemplates":[{}],"updateStrategy":{"type":"OnDelete","rollingUpdate":{"partition":-1}}}}`, types.JSONPatchType, `[{"op":"add","path":"/spec/replicas","value":2}]`},
		{"PersistentVolume", mediaJSON, 0, `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"p"},"spec":{"capacity":{"storage":"1Gi"},"hostPath":{"path":""},"nfs":{"server":"","path":"x"}}}`, types.MergePatchType, `{"spec":{"claimRef":{}}}`},
		{"EndpointSlice", mediaJSON, 0, `{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"e"},"addressType":"IPv4","endpoints":[{"addresses":["not-an-ip"]}],"ports":[{"port":70000}]}`, types.MergePatchType, `{"addressType":"FQDN"}`},
		{"Event", mediaJSON, 0, `{"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"involvedObject":{},"series":{"count":-1}}`, types.MergePatchType, `{"count":2}`},
		{"Scale", mediaJSON, 0, `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},"spec":{"replicas":3}}`, types.MergePatchType, `{"spec":{"replicas":-1}}`},
		{"Binding", mediaJSON, 0, `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n"}}`, types.JSONPatchType, `[{"op":"remove","path":"/target"}]`},
		{"Eviction", mediaJSON, 0, `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p"},"deleteOptions":{"gracePeriodSeconds":0}}`, types.MergePatchType, `{}`},
		{"SelfSubjectAccessReview", mediaJSON, 0, `{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"get"}}}`, types.MergePatchType, `{}`},
		{"DeleteOptions", mediaJSON, 0, `{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"x"},"propagationPolicy":"Foreground","orphanDependents":true}`, types.MergePatchType, `{}`},
		{"DeleteOptions", mediaProtobuf, 0, string(proto(&metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "DeleteOptions"}, DryRun: []string{"Bogus"}})), types.MergePatchType, `{}`},
		{"DeleteOptions", mediaYAML, 0, "gracePeriodSeconds: 1\n", types.MergePatchType, `{}`},
	}
	for _, sd := range seeds {
		tg, ok := targetOf[sd.kind]
		if !ok {
			f.Fatalf("no target for %s", sd.kind)
		}
		f.Add(tg, media[sd.media], sd.fv, []byte(sd.body), pt[sd.pt], []byte(sd.patch))
	}

	f.Fuzz(func(t *testing.T, target, mediaSel, fvSel uint8, body []byte, ptSel uint8, patch []byte) {
		tg := targets[index(target, len(targets))]
		query := "fieldValidation=" + fuzzFieldValidations[index(fvSel, len(fuzzFieldValidations))]
		q := newDecodeRequest(tg.res, fuzzMedia[index(mediaSel, len(fuzzMedia))], query)
		if tg.deleteOptions {
			q.r.Body = io.NopCloser(bytes.NewReader(body))
			q.ri.Name = "x"
			if _, err := s.deleteOptions(q); err != nil {
				wantClientError(t, "deleteOptions", err)
			}
			return
		}
		obj, err := s.decodeObject(q, body, tg.gvk, tg.new())
		if err != nil {
			wantClientError(t, "decode", err)
			return
		}
		if obj == nil || obj.GetObjectKind().GroupVersionKind() != tg.gvk {
			t.Fatalf("decoded %#v, want a %v", obj, tg.gvk)
		}
		if tg.own {
			// What create does before admission and the store.
			if tg.res.Default != nil {
				tg.res.Default(obj)
			}
			if tg.res.PrepareForCreate != nil {
				tg.res.PrepareForCreate(obj)
			}
			if err := s.validate(q, obj, nil); err != nil {
				wantClientError(t, "validate", err)
			}
			s.table(q, []runtime.Object{obj}, output{Media: mediaJSON, Info: s.codecs.json})
		}

		// What patch does with the current object.
		original, err := runtime.Encode(s.codecs.json.Serializer, obj)
		if err != nil {
			t.Fatalf("encode decoded object: %v", err)
		}
		patched, err := applyPatch(fuzzPatchTypes[index(ptSel, len(fuzzPatchTypes))], original, patch, tg.new())
		if err != nil {
			wantClientError(t, "patch", err)
			return
		}
		pq := newDecodeRequest(tg.res, mediaJSON, query)
		next, err := s.decodeObject(pq, patched, tg.gvk, tg.new())
		if err != nil {
			wantClientError(t, "decode patched", err)
			return
		}
		if tg.own {
			if tg.res.Default != nil {
				tg.res.Default(next)
			}
			if err := s.validate(pq, next, obj); err != nil {
				wantClientError(t, "validate update", err)
			}
			specChanged(obj, next)
		}
	})
}
