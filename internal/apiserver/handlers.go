package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	corev1 "k8s.io/api/core/v1"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/store"
)

// request is one resource request being served.
type request struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	ri  requestInfo
	res *registry.Resource
	// warnings are sent as Warning headers.
	warnings []string
}

func (q *request) gr() schema.GroupResource { return q.res.GroupResource() }

func (q *request) key(name string) string {
	if q.res.Namespaced {
		return q.res.Key() + q.ri.Namespace + "/" + name
	}
	return q.res.Key() + name
}

// listPrefix is the key prefix of the collection the request names.
func (q *request) listPrefix() string {
	if q.res.Namespaced && q.ri.Namespace != "" {
		return q.res.Key() + q.ri.Namespace + "/"
	}
	return q.res.Key()
}

// statusRecorder remembers the response code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ri, ok := parseRequestInfo(r)
	if !ok {
		s.writeError(w, r, notFoundPath())
		return
	}
	res := s.resources[schema.GroupVersionResource{Group: ri.Group, Version: ri.Version, Resource: ri.Resource}]
	if res == nil || (!res.Namespaced && ri.Namespace != "") {
		s.writeError(w, r, notFoundPath())
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	q := &request{w: rec, r: r, ctx: r.Context(), ri: ri, res: res}
	if s.cfg.Observer != nil {
		defer func() {
			code := rec.code
			if code == 0 {
				code = http.StatusOK
			}
			s.cfg.Observer.ObserveRequest(ri.Verb, ri.Group, ri.Resource, code, time.Since(start))
		}()
	}
	if err := s.dispatch(q); err != nil {
		s.writeError(rec, r, toStatus(err, res.GroupResource(), ri.Name))
	}
}

func (s *Server) dispatch(q *request) error {
	ri := q.ri
	switch ri.Subresource {
	case "":
		switch ri.Verb {
		case "get":
			return s.get(q)
		case "list":
			return s.list(q)
		case "watch":
			return s.watch(q)
		case "create":
			if ri.Name != "" {
				return apierrors.NewMethodNotSupported(q.gr(), "create")
			}
			return s.create(q)
		case "update":
			return s.update(q, "")
		case "patch":
			return s.patch(q, "")
		case "delete":
			return s.delete(q)
		case "deletecollection":
			return s.deleteCollection(q)
		}
	case "status":
		if !q.res.Status {
			break
		}
		switch ri.Verb {
		case "get":
			return s.get(q)
		case "update":
			return s.update(q, "status")
		case "patch":
			return s.patch(q, "status")
		}
	case "scale":
		if q.res.Scale == nil {
			break
		}
		return s.scale(q)
	case "binding":
		if q.res.Resource == "pods" && ri.Verb == "create" {
			return s.bindPod(q)
		}
	case "eviction":
		if q.res.Resource == "pods" && ri.Verb == "create" {
			return s.evictPod(q)
		}
	case "token":
		if q.res.Group == "" && q.res.Resource == "serviceaccounts" && ri.Verb == "create" {
			return s.serviceAccountToken(q)
		}
	case "finalize":
		if q.res.Resource == "namespaces" && ri.Verb == "update" {
			return s.update(q, "finalize")
		}
	case "log", "exec", "attach", "portforward":
		if q.res.Group == "" && q.res.Resource == "pods" {
			return s.proxyPod(q)
		}
	case "proxy":
		if q.res.Resource == "pods" {
			return apierrors.NewServiceUnavailable(fmt.Sprintf("pods/%s needs a node agent, which is not running", ri.Subresource))
		}
	}
	if ri.Subresource != "" && (ri.Verb == "get" || ri.Verb == "list") {
		return notFoundPath()
	}
	return apierrors.NewMethodNotSupported(q.gr(), ri.Verb)
}

// --- reading ---

func (s *Server) get(q *request) error {
	out, err := s.codecs.negotiate(q.r, q.res.New())
	if err != nil {
		return err
	}
	obj, err := s.store.Get(q.ctx, q.key(q.ri.Name))
	if err != nil {
		return err
	}
	s.writeResult(q, http.StatusOK, obj, out)
	return nil
}

// selection is a list or watch request's filters.
type selection struct {
	labels labels.Selector
	fields fields.Selector
}

func (s *Server) parseSelection(q *request) (selection, error) {
	sel := selection{labels: labels.Everything(), fields: fields.Everything()}
	v := q.r.URL.Query()
	if ls := v.Get("labelSelector"); ls != "" {
		parsed, err := labels.Parse(ls)
		if err != nil {
			return sel, badRequest("unable to parse requirement: %v", err)
		}
		sel.labels = parsed
	}
	if fs := v.Get("fieldSelector"); fs != "" {
		parsed, err := fields.ParseSelector(fs)
		if err != nil {
			return sel, badRequest("invalid field selector: %v", err)
		}
		known := s.fieldSet(q.res, q.res.New())
		for _, req := range parsed.Requirements() {
			if _, ok := known[req.Field]; !ok {
				return sel, badRequest("field label not supported: %s", req.Field)
			}
		}
		sel.fields = parsed
	}
	if q.ri.Name != "" && q.ri.Verb == "watch" {
		sel.fields = fields.AndSelectors(sel.fields, fields.OneTermEqualSelector("metadata.name", q.ri.Name))
	}
	return sel, nil
}

func (s *Server) fieldSet(res *registry.Resource, obj runtime.Object) fields.Set {
	set := fields.Set{}
	if res.Fields != nil {
		set = res.Fields(obj)
		if set == nil {
			set = fields.Set{}
		}
	}
	if m, err := meta.Accessor(obj); err == nil {
		set["metadata.name"] = m.GetName()
		if res.Namespaced {
			set["metadata.namespace"] = m.GetNamespace()
		}
	}
	return set
}

func (sel selection) everything() bool { return sel.labels.Empty() && sel.fields.Empty() }

func (s *Server) matcher(res *registry.Resource, sel selection) func(runtime.Object) bool {
	if sel.everything() {
		return nil
	}
	return func(obj runtime.Object) bool {
		m, err := meta.Accessor(obj)
		if err != nil {
			return false
		}
		if !sel.labels.Matches(labels.Set(m.GetLabels())) {
			return false
		}
		return sel.fields.Empty() || sel.fields.Matches(s.fieldSet(res, obj))
	}
}

func (s *Server) list(q *request) error {
	out, err := s.codecs.negotiate(q.r, q.res.NewList())
	if err != nil {
		return err
	}
	sel, err := s.parseSelection(q)
	if err != nil {
		return err
	}
	v := q.r.URL.Query()
	opts := store.ListOptions{Match: s.matcher(q.res, sel), Continue: v.Get("continue")}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n < 0 {
			return badRequest("invalid limit %q", l)
		}
		opts.Limit = n
	}
	if rv := v.Get("resourceVersion"); rv != "" && rv != "0" && v.Get("resourceVersionMatch") == string(metav1.ResourceVersionMatchExact) {
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil {
			return badRequest("invalid resourceVersion %q", rv)
		}
		opts.Revision = n
	}
	res, err := s.store.List(q.ctx, q.listPrefix(), opts)
	if err != nil {
		return err
	}
	list := q.res.NewList()
	if err := meta.SetList(list, res.Items); err != nil {
		return err
	}
	lm, _ := meta.ListAccessor(list)
	lm.SetResourceVersion(strconv.FormatInt(res.Revision, 10))
	lm.SetContinue(res.Continue)
	lm.SetRemainingItemCount(res.Remaining)
	list.GetObjectKind().SetGroupVersionKind(q.res.GroupVersion().WithKind(q.res.Kind + "List"))
	switch out.As {
	case "Table":
		t := s.table(q, res.Items, out)
		t.ResourceVersion = lm.GetResourceVersion()
		t.Continue = res.Continue
		t.RemainingItemCount = res.Remaining
		s.writeObject(q.w, q.r, http.StatusOK, t, out)
	case "PartialObjectMetadataList", "PartialObjectMetadata":
		pl := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}}
		pl.ResourceVersion, pl.Continue, pl.RemainingItemCount = lm.GetResourceVersion(), res.Continue, res.Remaining
		for _, it := range res.Items {
			pl.Items = append(pl.Items, *partialMetadata(it))
		}
		s.writeObject(q.w, q.r, http.StatusOK, pl, out)
	default:
		s.writeObject(q.w, q.r, http.StatusOK, list, out)
	}
	return nil
}

// writeResult writes one object in the asked form (object, Table row or
// metadata only) with any warnings.
func (s *Server) writeResult(q *request, code int, obj runtime.Object, out output) {
	for _, w := range q.warnings {
		q.w.Header().Add("Warning", fmt.Sprintf("299 - %q", w))
	}
	obj.GetObjectKind().SetGroupVersionKind(q.res.GroupVersionKind())
	switch out.As {
	case "Table":
		s.writeObject(q.w, q.r, code, s.table(q, []runtime.Object{obj}, out), out)
	case "PartialObjectMetadata":
		s.writeObject(q.w, q.r, code, partialMetadata(obj), out)
	default:
		if out.As != "" {
			out.As = ""
		}
		s.writeObject(q.w, q.r, code, obj, out)
	}
}

// --- writing ---

// readBody reads a request body up to the size limit.
func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, badRequest("read body: %v", err)
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBodyBytes))
	}
	return data, nil
}

// fieldValidation returns the request's fieldValidation directive.
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "":
		return "Warn", nil
	case "Strict", "Warn", "Ignore":
		return v, nil
	}
	return "", badRequest("fieldValidation must be one of Ignore, Warn or Strict, got %q", v)
}

// decodeObject decodes a request body into the resource's type, applying
// fieldValidation: unknown and duplicate fields fail under Strict and become
// warnings under Warn.
func (s *Server) decodeObject(q *request, data []byte, gvk schema.GroupVersionKind, into runtime.Object) (runtime.Object, error) {
	info, media, err := s.codecs.bodySerializer(q.r)
	if err != nil {
		return nil, err
	}
	fv, err := fieldValidation(q.r)
	if err != nil {
		return nil, err
	}
	dec := info.Serializer
	if fv != "Ignore" && info.StrictSerializer != nil {
		dec = info.StrictSerializer
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, badRequest("the body of the request was empty")
	}
	obj, got, err := dec.Decode(data, &gvk, into)
	if err != nil && runtime.IsStrictDecodingError(err) {
		if fv == "Strict" {
			return nil, badRequest("%v", err)
		}
		var sde interface{ Errors() []error }
		if errors.As(err, &sde) {
			for _, e := range sde.Errors() {
				q.warnings = append(q.warnings, e.Error())
			}
		}
		err = nil
	}
	if err != nil {
		if runtime.IsNotRegisteredError(err) || runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
			return nil, badRequest("%v", err)
		}
		return nil, badRequest("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, decodeMessage(err, media))
	}
	if got != nil && (got.Kind != gvk.Kind || got.GroupVersion() != gvk.GroupVersion()) {
		if got.GroupVersion() != gvk.GroupVersion() {
			return nil, badRequest("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion().String(), gvk.GroupVersion().String())
		}
		return nil, badRequest("the kind in the data (%s) does not match the expected kind (%s)", got.Kind, gvk.Kind)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

func decodeMessage(err error, media string) string {
	msg := err.Error()
	if media == mediaProtobuf {
		return "invalid protobuf body: " + msg
	}
	return msg
}

// dryRun reports whether the request asks for dryRun=All.
func dryRun(r *http.Request) (bool, error) {
	vals := r.URL.Query()["dryRun"]
	for _, v := range vals {
		if v != "All" {
			return false, badRequest("unsupported dryRun value %q: only All is supported", v)
		}
	}
	return len(vals) > 0, nil
}

func (s *Server) invalid(q *request, name string, errs field.ErrorList) error {
	return apierrors.NewInvalid(schema.GroupKind{Group: q.res.Group, Kind: q.res.Kind}, name, errs)
}

func (s *Server) validate(q *request, obj, old runtime.Object) error {
	m, _ := meta.Accessor(obj)
	var errs field.ErrorList
	if q.res.Validate != nil {
		errs = q.res.Validate(obj)
	} else {
		errs = apivalidation.ValidateObjectMetaAccessor(m, q.res.Namespaced, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	}
	if old != nil && q.res.ValidateUpdate != nil {
		errs = append(errs, q.res.ValidateUpdate(obj, old)...)
	}
	if len(errs) > 0 {
		return s.invalid(q, m.GetName(), errs)
	}
	return nil
}

// readObject negotiates the reply format and decodes the request body as
// the resource's kind.
func (s *Server) readObject(q *request) (output, runtime.Object, error) {
	out, err := s.codecs.negotiate(q.r, q.res.New())
	if err != nil {
		return out, nil, err
	}
	data, err := readBody(q.r)
	if err != nil {
		return out, nil, err
	}
	obj, err := s.decodeObject(q, data, q.res.GroupVersionKind(), q.res.New())
	return out, obj, err
}

func (s *Server) create(q *request) error {
	if q.res.Namespaced && q.ri.Namespace == "" {
		return apierrors.NewMethodNotSupported(q.gr(), "create")
	}
	out, obj, err := s.readObject(q)
	if err != nil {
		return err
	}
	dry, err := dryRun(q.r)
	if err != nil {
		return err
	}
	m, _ := meta.Accessor(obj)
	if q.res.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(q.ri.Namespace)
		} else if m.GetNamespace() != q.ri.Namespace {
			return badRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	} else {
		m.SetNamespace("")
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + generateNameSuffix())
	}
	if m.GetName() == "" {
		return s.invalid(q, "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	prepareCreateMeta(obj, m)
	if q.res.Default != nil {
		q.res.Default(obj)
	}
	if q.res.PrepareForCreate != nil {
		q.res.PrepareForCreate(obj)
	}
	if err := s.validate(q, obj, nil); err != nil {
		return err
	}
	if s.cfg.Admission != nil {
		if err := s.cfg.Admission.Admit(q.ctx, Create, q.res, obj, nil); err != nil {
			return err
		}
	}
	if dry {
		s.writeResult(q, http.StatusCreated, obj, out)
		return nil
	}
	stored, err := s.store.Create(q.ctx, q.key(m.GetName()), obj)
	if err != nil {
		if s.cfg.Admission != nil {
			s.cfg.Admission.Released(q.ctx, q.res, obj)
		}
		if errors.Is(err, store.ErrExists) {
			return apierrors.NewAlreadyExists(q.gr(), m.GetName())
		}
		return err
	}
	s.writeResult(q, http.StatusCreated, stored, out)
	return nil
}

// prepareCreateMeta sets what the server owns in a new object's metadata.
func prepareCreateMeta(obj runtime.Object, m metav1.Object) {
	m.SetUID(uuidNew())
	m.SetCreationTimestamp(metav1.Now())
	m.SetResourceVersion("")
	m.SetSelfLink("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetManagedFields(nil)
	if hasSpec(obj) {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
}

func uuidNew() types.UID { return types.UID(uuid.NewString()) }

// update serves PUT on the object, its status or (namespaces) finalize.
func (s *Server) update(q *request, sub string) error {
	out, incoming, err := s.readObject(q)
	if err != nil {
		return err
	}
	m, _ := meta.Accessor(incoming)
	if m.GetName() != q.ri.Name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), q.ri.Name)
	}
	if q.res.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(q.ri.Namespace)
		} else if m.GetNamespace() != q.ri.Namespace {
			return badRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	}
	return s.writeUpdate(q, out, sub, func(cur runtime.Object) (runtime.Object, error) {
		return incoming.DeepCopyObject(), nil
	})
}

// writeUpdate runs the update pipeline: next computes the wanted object from
// the current one; the server then keeps what clients may not change,
// defaults, validates, admits and stores it with a compare-and-swap.
func (s *Server) writeUpdate(q *request, out output, sub string, next func(cur runtime.Object) (runtime.Object, error)) error {
	dry, err := dryRun(q.r)
	if err != nil {
		return err
	}
	var result runtime.Object
	fn := func(cur runtime.Object) (runtime.Object, error) {
		want, err := next(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		obj, err := s.prepareUpdate(q, cur, want, sub)
		if err != nil {
			return nil, err
		}
		if dry {
			result = obj
			return nil, errDryRun
		}
		return obj, nil
	}
	stored, err := s.store.Update(q.ctx, q.key(q.ri.Name), fn, finalized)
	if errors.Is(err, errDryRun) {
		s.writeResult(q, http.StatusOK, result, out)
		return nil
	}
	if err != nil {
		return err
	}
	s.writeResult(q, http.StatusOK, stored, out)
	return nil
}

var errDryRun = errors.New("dry run")

func (s *Server) prepareUpdate(q *request, cur, want runtime.Object, sub string) (runtime.Object, error) {
	cm, _ := meta.Accessor(cur)
	wm, _ := meta.Accessor(want)
	if rv := wm.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return nil, apierrors.NewConflict(q.gr(), q.ri.Name, errors.New(conflictMsg))
	}
	if uid := wm.GetUID(); uid != "" && uid != cm.GetUID() {
		return nil, apierrors.NewConflict(q.gr(), q.ri.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, cm.GetUID()))
	}
	var obj runtime.Object
	switch sub {
	case "status":
		// Only the status changes through /status.
		obj = cur.DeepCopyObject()
		copyStatus(obj, want)
	case "finalize":
		obj = cur.DeepCopyObject()
		setNamespaceFinalizers(obj, want)
	default:
		obj = want
		if q.res.Status {
			copyStatus(obj, cur)
		}
		// A namespace's spec.finalizers change only through /finalize.
		if ns, ok := obj.(*corev1.Namespace); ok {
			ns.Spec.Finalizers = cur.(*corev1.Namespace).Spec.Finalizers
		}
	}
	m, _ := meta.Accessor(obj)
	m.SetUID(cm.GetUID())
	m.SetCreationTimestamp(cm.GetCreationTimestamp())
	m.SetDeletionTimestamp(cm.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(cm.GetDeletionGracePeriodSeconds())
	m.SetGeneration(cm.GetGeneration())
	m.SetNamespace(cm.GetNamespace())
	m.SetSelfLink("")
	m.SetManagedFields(cm.GetManagedFields())
	m.SetResourceVersion(cm.GetResourceVersion())
	if cm.GetDeletionTimestamp() != nil {
		for _, f := range m.GetFinalizers() {
			if !containsString(cm.GetFinalizers(), f) {
				return nil, s.invalid(q, q.ri.Name, field.ErrorList{field.Forbidden(field.NewPath("metadata", "finalizers"), fmt.Sprintf("no new finalizers can be added if the object is being deleted, found new finalizers []string{%q}", f))})
			}
		}
	}
	if q.res.Default != nil {
		q.res.Default(obj)
	}
	if err := s.validate(q, obj, cur); err != nil {
		return nil, err
	}
	if sub == "status" && q.res.ValidateStatus != nil {
		if errs := q.res.ValidateStatus(obj, cur); len(errs) > 0 {
			return nil, s.invalid(q, m.GetName(), errs)
		}
	}
	if s.cfg.Admission != nil {
		if err := s.cfg.Admission.Admit(q.ctx, Update, q.res, obj, cur); err != nil {
			return nil, err
		}
	}
	if hasSpec(obj) && specChanged(cur, obj) {
		m.SetGeneration(cm.GetGeneration() + 1)
	}
	if sub == "" && q.res.PrepareForUpdate != nil {
		q.res.PrepareForUpdate(obj, cur)
	}
	return obj, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// --- deleting ---

// deleteOptions reads DeleteOptions from the body or the query.
func (s *Server) deleteOptions(q *request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	data, err := readBody(q.r)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(data))) > 0 {
		info, media, err := s.codecs.bodySerializer(q.r)
		if err != nil {
			return nil, err
		}
		if media == mediaProtobuf {
			if _, _, err := info.Serializer.Decode(data, nil, opts); err != nil {
				return nil, badRequest("invalid DeleteOptions: %v", err)
			}
		} else if err := yamlOrJSONUnmarshal(data, opts); err != nil {
			return nil, badRequest("invalid DeleteOptions: %v", err)
		}
	}
	v := q.r.URL.Query()
	if g := v.Get("gracePeriodSeconds"); g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, badRequest("invalid gracePeriodSeconds %q", g)
		}
		opts.GracePeriodSeconds = &n
	}
	if p := v.Get("propagationPolicy"); p != "" {
		pp := metav1.DeletionPropagation(p)
		opts.PropagationPolicy = &pp
	}
	if o := v.Get("orphanDependents"); o != "" {
		b := o == "true"
		opts.OrphanDependents = &b
	}
	if d := v["dryRun"]; len(d) > 0 {
		opts.DryRun = d
	}
	if opts.PropagationPolicy != nil {
		switch *opts.PropagationPolicy {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return nil, s.invalid(q, q.ri.Name, field.ErrorList{field.NotSupported(field.NewPath("propagationPolicy"), *opts.PropagationPolicy, []string{"Foreground", "Background", "Orphan", "nil"})})
		}
		if opts.OrphanDependents != nil {
			return nil, s.invalid(q, q.ri.Name, field.ErrorList{field.Invalid(field.NewPath("propagationPolicy"), *opts.PropagationPolicy, "orphanDependents and deletionPropagation cannot be both set")})
		}
	}
	for _, d := range opts.DryRun {
		if d != "All" {
			return nil, badRequest("unsupported dryRun value %q", d)
		}
	}
	return opts, nil
}

// yamlOrJSONUnmarshal reads a DeleteOptions body sent as JSON or YAML.
func yamlOrJSONUnmarshal(data []byte, v any) error {
	if json.Valid(data) {
		return json.Unmarshal(data, v)
	}
	return utilyaml.Unmarshal(data, v)
}

func (s *Server) delete(q *request) error {
	opts, err := s.deleteOptions(q)
	if err != nil {
		return err
	}
	out, err := s.codecs.negotiate(q.r, q.res.New())
	if err != nil {
		return err
	}
	obj, deleted, err := s.deleteObject(q.ctx, q.res, q.key(q.ri.Name), q.ri.Name, opts)
	if err != nil {
		return err
	}
	if deleted {
		m, _ := meta.Accessor(obj)
		st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
			Details: &metav1.StatusDetails{Name: q.ri.Name, Group: q.res.Group, Kind: q.res.Resource, UID: m.GetUID()}}
		if q.res.Resource == "pods" || q.res.Resource == "namespaces" {
			// kube-apiserver returns these objects themselves.
			s.writeResult(q, http.StatusOK, obj, out)
			return nil
		}
		s.writeObject(q.w, q.r, http.StatusOK, st, out)
		return nil
	}
	s.writeResult(q, http.StatusOK, obj, out)
	return nil
}

// deleteObject deletes now, or marks the object for deletion when
// finalizers or a grace period must run first. It reports whether the object
// is gone.
func (s *Server) deleteObject(ctx context.Context, res *registry.Resource, key, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	gr := res.GroupResource()
	dry := len(opts.DryRun) > 0
	check := func(cur runtime.Object) error {
		m, _ := meta.Accessor(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		return nil
	}
	cur, err := s.store.Get(ctx, key)
	if err != nil {
		return nil, false, err
	}
	if err := check(cur); err != nil {
		return nil, false, err
	}
	if needsGracefulDeletion(res, cur, opts) {
		if dry {
			return cur, false, nil
		}
		obj, err := s.store.Update(ctx, key, func(c runtime.Object) (runtime.Object, error) {
			if err := check(c); err != nil {
				return nil, err
			}
			markDeleting(res, c, opts)
			return c, nil
		}, finalized)
		if err != nil {
			return nil, false, err
		}
		m, _ := meta.Accessor(obj)
		gone := m.GetDeletionTimestamp() != nil && finalized(obj)
		return obj, gone, nil
	}
	if dry {
		return cur, true, nil
	}
	obj, err := s.store.Delete(ctx, key, check)
	if err != nil {
		return nil, false, err
	}
	if s.cfg.Admission != nil {
		s.cfg.Admission.Released(ctx, res, obj)
	}
	return obj, true, nil
}

func (s *Server) deleteCollection(q *request) error {
	opts, err := s.deleteOptions(q)
	if err != nil {
		return err
	}
	// No sample: writeObject falls back to JSON for lists protobuf cannot carry.
	out, err := s.codecs.negotiate(q.r, nil)
	if err != nil {
		return err
	}
	sel, err := s.parseSelection(q)
	if err != nil {
		return err
	}
	res, err := s.store.List(q.ctx, q.listPrefix(), store.ListOptions{Match: s.matcher(q.res, sel)})
	if err != nil {
		return err
	}
	list := q.res.NewList()
	var deleted []runtime.Object
	for _, it := range res.Items {
		m, _ := meta.Accessor(it)
		key := q.res.Key() + m.GetName()
		if q.res.Namespaced {
			key = q.res.Key() + m.GetNamespace() + "/" + m.GetName()
		}
		obj, _, err := s.deleteObject(q.ctx, q.res, key, m.GetName(), opts)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if obj != nil {
			deleted = append(deleted, obj)
		}
	}
	meta.SetList(list, deleted)
	list.GetObjectKind().SetGroupVersionKind(q.res.GroupVersion().WithKind(q.res.Kind + "List"))
	s.writeObject(q.w, q.r, http.StatusOK, list, out)
	return nil
}
