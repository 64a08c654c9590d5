package apiserver

import (
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// serveReview answers SelfSubjectAccessReview and SelfSubjectRulesReview.
// Until RBAC arrives every authenticated user may do everything, so the
// answers are "allowed" and a rule that covers all.
func (s *Server) serveReview(w http.ResponseWriter, r *http.Request, parts []string) {
	if len(parts) != 4 || parts[2] != "v1" || r.Method != http.MethodPost {
		s.writeError(w, r, notFoundPath())
		return
	}
	q := &request{w: w, r: r, ctx: r.Context()}
	data, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var out runtime.Object
	switch parts[3] {
	case "selfsubjectaccessreviews":
		gvk := authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview")
		obj, err := s.decodeObject(q, data, gvk, &authorizationv1.SelfSubjectAccessReview{})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		rev := obj.(*authorizationv1.SelfSubjectAccessReview)
		rev.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "skiff allows every authenticated user until RBAC is implemented"}
		out = rev
	case "selfsubjectrulesreviews":
		gvk := authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectRulesReview")
		obj, err := s.decodeObject(q, data, gvk, &authorizationv1.SelfSubjectRulesReview{})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		rev := obj.(*authorizationv1.SelfSubjectRulesReview)
		rev.Status = authorizationv1.SubjectRulesReviewStatus{
			ResourceRules:    []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
			NonResourceRules: []authorizationv1.NonResourceRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
		}
		out = rev
	default:
		s.writeError(w, r, apierrors.NewNotFound(schema.GroupResource{Group: reviewGroup, Resource: parts[3]}, ""))
		return
	}
	o, err := s.codecs.negotiate(r, out)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeObject(w, r, http.StatusCreated, out, o)
}
