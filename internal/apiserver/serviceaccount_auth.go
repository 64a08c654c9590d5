package apiserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Keys of the user's extra information for a service account token, as
// Kubernetes names them.
const (
	extraPodName      = "authentication.kubernetes.io/pod-name"
	extraPodUID       = "authentication.kubernetes.io/pod-uid"
	extraNodeName     = "authentication.kubernetes.io/node-name"
	extraNodeUID      = "authentication.kubernetes.io/node-uid"
	extraCredentialID = "authentication.kubernetes.io/credential-id"
)

// errNotServiceAccountToken says a bearer token is not a JWT this server
// signed; other errors say why one it signed is refused.
var errNotServiceAccountToken = errors.New("not a service account token")

// serviceAccountUser authenticates a token from serviceaccounts/token as
// kube-apiserver's service account authenticator does: the signature, the
// issuer, the times (with a minute's leeway), one of the API server's
// audiences, then that the service account and what the token is bound to
// still exist with the UIDs the token names. Objects are read from the store
// on every request, so a deleted pod's token stops working at once.
func (s *Server) serviceAccountUser(ctx context.Context, raw string) (User, error) {
	t := s.tokens
	if t == nil {
		return User{}, errNotServiceAccountToken
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{t.alg})
	if err != nil {
		return User{}, errNotServiceAccountToken
	}
	var public jwt.Claims
	var private privateClaims
	if err := tok.Claims(t.public, &public, &private); err != nil {
		return User{}, fmt.Errorf("%w: %v", errNotServiceAccountToken, err)
	}
	if public.Issuer != t.issuer {
		return User{}, fmt.Errorf("token issuer %q is invalid", public.Issuer)
	}
	now := time.Now()
	switch err := public.Validate(jwt.Expected{Time: now}); {
	case err == nil:
	case errors.Is(err, jwt.ErrExpired):
		return User{}, errors.New("service account token has expired")
	case errors.Is(err, jwt.ErrNotValidYet):
		return User{}, errors.New("service account token is not valid yet")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return User{}, errors.New("service account token is issued in the future")
	default:
		return User{}, fmt.Errorf("service account token claims could not be validated: %w", err)
	}
	audiences := []string(public.Audience)
	if len(audiences) == 0 {
		audiences = t.audiences
	}
	if !slices.ContainsFunc(audiences, func(a string) bool { return slices.Contains(t.audiences, a) }) {
		return User{}, fmt.Errorf("token audiences %q is invalid for the target audiences %q", audiences, t.audiences)
	}
	return s.validateServiceAccountClaims(ctx, now, public.ID, private.Kubernetes)
}

// validateServiceAccountClaims checks that what a verified token names is
// still there, and returns its user.
func (s *Server) validateServiceAccountClaims(ctx context.Context, now time.Time, jti string, k kubernetesClaims) (User, error) {
	ns, saRef := k.Namespace, k.ServiceAccount
	if ns == "" || saRef.Name == "" {
		return User{}, errors.New("service account token names no service account")
	}
	// Objects deleted more than a leeway ago no longer vouch for the token.
	deletedBefore := now.Add(-jwt.DefaultLeeway)
	deleted := func(ts *metav1.Time) bool { return ts != nil && ts.Time.Before(deletedBefore) }
	invalidated := errors.New("service account token has been invalidated")

	sa, err := getObject[*corev1.ServiceAccount](ctx, s.store, serviceAccountKey(ns, saRef.Name), schema.GroupResource{Resource: "serviceaccounts"}, saRef.Name)
	if err != nil {
		return User{}, err
	}
	if string(sa.UID) != saRef.UID {
		return User{}, fmt.Errorf("service account UID (%s) does not match claim (%s)", sa.UID, saRef.UID)
	}
	if deleted(sa.DeletionTimestamp) {
		return User{}, fmt.Errorf("service account %s/%s has been deleted", ns, saRef.Name)
	}
	if ref := k.Secret; ref != nil {
		secret, err := getObject[*corev1.Secret](ctx, s.store, secretKey(ns, ref.Name), schema.GroupResource{Resource: "secrets"}, ref.Name)
		if err != nil {
			return User{}, invalidated
		}
		if string(secret.UID) != ref.UID {
			return User{}, fmt.Errorf("secret UID (%s) does not match service account secret ref claim (%s)", secret.UID, ref.UID)
		}
		if deleted(secret.DeletionTimestamp) {
			return User{}, invalidated
		}
	}
	u := User{
		Name:   serviceAccountUsername(ns, saRef.Name),
		UID:    saRef.UID,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	extra := map[string][]string{}
	if ref := k.Pod; ref != nil {
		pod, err := getObject[*corev1.Pod](ctx, s.store, podKey(ns, ref.Name), schema.GroupResource{Resource: "pods"}, ref.Name)
		if err != nil {
			return User{}, invalidated
		}
		if string(pod.UID) != ref.UID {
			return User{}, fmt.Errorf("pod UID (%s) does not match service account pod ref claim (%s)", pod.UID, ref.UID)
		}
		if deleted(pod.DeletionTimestamp) {
			return User{}, invalidated
		}
		extra[extraPodName], extra[extraPodUID] = []string{ref.Name}, []string{ref.UID}
	}
	if ref := k.Node; ref != nil {
		if k.Pod == nil {
			// A token bound to the node itself lives as long as the node.
			node, err := getObject[*corev1.Node](ctx, s.store, nodeKey(ref.Name), schema.GroupResource{Resource: "nodes"}, ref.Name)
			if err != nil {
				return User{}, invalidated
			}
			if string(node.UID) != ref.UID {
				return User{}, fmt.Errorf("node UID (%s) does not match service account node ref claim (%s)", node.UID, ref.UID)
			}
			if deleted(node.DeletionTimestamp) {
				return User{}, invalidated
			}
		}
		extra[extraNodeName] = []string{ref.Name}
		if ref.UID != "" {
			extra[extraNodeUID] = []string{ref.UID}
		}
	}
	if jti != "" {
		extra[extraCredentialID] = []string{"JTI=" + jti}
	}
	if len(extra) > 0 {
		u.Extra = extra
	}
	return u, nil
}
