package apiserver

import (
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// patchType reads the patch flavour from the Content-Type.
func patchType(r *http.Request) (types.PatchType, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return "", unsupportedPatch(r.Header.Get("Content-Type"))
	}
	switch types.PatchType(mt) {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
		return types.PatchType(mt), nil
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return "", statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
			"server-side apply is not supported by skiff yet; use client-side kubectl apply")
	}
	return "", unsupportedPatch(mt)
}

func unsupportedPatch(ct string) error {
	return statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s", types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType))
}

// maxJSONPatchOperations is kube-apiserver's limit on one JSON patch.
const maxJSONPatchOperations = 10000

func init() {
	// json-patch copies without limit unless told otherwise: a few "copy"
	// operations that each double the document exhaust memory and CPU
	// (CVE-2019-1002100). This package variable is its only knob;
	// kube-apiserver caps the copied bytes at the request body limit too.
	jsonpatch.AccumulatedCopySizeLimit = maxBodyBytes
}

// applyPatch applies a patch document to an object's JSON.
func applyPatch(pt types.PatchType, original, patch []byte, schemaObj runtime.Object) ([]byte, error) {
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, badRequest("invalid JSON patch: %v", err)
		}
		if len(p) > maxJSONPatchOperations {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("The allowed maximum operations in a JSON patch is %d, got %d", maxJSONPatchOperations, len(p)))
		}
		out, err := p.Apply(original)
		if err != nil {
			return nil, statusError(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, fmt.Sprintf("the server rejected our request due to an error in our request: %v", err))
		}
		return out, nil
	case types.MergePatchType:
		out, err := jsonpatch.MergePatch(original, patch)
		if err != nil {
			return nil, badRequest("invalid merge patch: %v", err)
		}
		return out, nil
	default:
		return strategicMergePatch(original, patch, schemaObj)
	}
}

// strategicMergePatch applies a strategic merge patch. strategicpatch panics
// on some malformed directives (a $retainKeys list holding objects); such a
// patch is the client's error, not a reason to drop the connection.
func strategicMergePatch(original, patch []byte, schemaObj runtime.Object) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, badRequest("invalid strategic merge patch: %v", r)
		}
	}()
	out, err = strategicpatch.StrategicMergePatch(original, patch, schemaObj)
	if err != nil {
		return nil, badRequest("invalid strategic merge patch: %v", err)
	}
	return out, nil
}

// patch serves PATCH on an object or its status: the patch is applied to the
// current object and the result goes through the update pipeline, retried
// on concurrent writes.
func (s *Server) patch(q *request, sub string) error {
	out, err := s.codecs.negotiate(q.r, q.res.New())
	if err != nil {
		return err
	}
	pt, err := patchType(q.r)
	if err != nil {
		return err
	}
	patch, err := readBody(q.r)
	if err != nil {
		return err
	}
	// The patched JSON is decoded as JSON whatever the patch's media type.
	jq := *q
	jr := q.r.Clone(q.ctx)
	jr.Header.Set("Content-Type", mediaJSON)
	jq.r = jr
	return s.writeUpdate(q, out, sub, func(cur runtime.Object) (runtime.Object, error) {
		cur.GetObjectKind().SetGroupVersionKind(q.res.GroupVersionKind())
		original, err := runtime.Encode(s.codecs.json.Serializer, cur)
		if err != nil {
			return nil, err
		}
		patched, err := applyPatch(pt, original, patch, q.res.New())
		if err != nil {
			return nil, err
		}
		jq.warnings = nil
		obj, err := s.decodeObject(&jq, patched, q.res.GroupVersionKind(), q.res.New())
		q.warnings = jq.warnings
		return obj, err
	})
}

func typesPatch(s string) types.PatchType { return types.PatchType(s) }
