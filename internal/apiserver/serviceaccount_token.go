package apiserver

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/pki"
	"github.com/skiff-sh/skiff/internal/store"
)

// DefaultServiceAccountIssuer is the iss claim of service account tokens and
// the API server's own audience, as in a kubeadm cluster.
const DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

const (
	// minTokenSeconds and maxTokenSeconds bound a TokenRequest's
	// expirationSeconds, as kube-apiserver's validation does.
	minTokenSeconds = 10 * 60
	maxTokenSeconds = 1 << 32
	// defaultTokenSeconds is TokenRequestSpec's default expirationSeconds.
	defaultTokenSeconds = 60 * 60
	// warnOnlyTokenSeconds is the lifetime the ServiceAccount admission
	// plugin asks for in a pod's kube-api-access volume. A pod-bound token
	// with it is valid for extendedTokenSeconds and says when the asked
	// lifetime ended in warnafter, as with kube-apiserver's default
	// --service-account-extend-token-expiration: clients that never reread
	// the token keep working.
	warnOnlyTokenSeconds = 60*60 + 7
	extendedTokenSeconds = 365 * 24 * 60 * 60
)

var tokenRequestGVK = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

// LoadOrCreateServiceAccountKey returns the service account signing key kept
// at path, creating an RSA 2048 key there (kubeadm's sa.key) the first time.
// PKCS#1, SEC 1 and PKCS#8 PEM keys are read.
func LoadOrCreateServiceAccountKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return parseServiceAccountKey(path, data)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if err := pki.WriteFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

func parseServiceAccountKey(path string, data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM data", path)
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block %q is not a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: a %T cannot sign", path, key)
	}
	return signer, nil
}

// tokenIssuer signs and verifies service account tokens with one key.
type tokenIssuer struct {
	issuer string
	// audiences are the API server's own: a token must name one of them
	// to authenticate here.
	audiences []string
	alg       jose.SignatureAlgorithm
	signer    jose.Signer
	public    crypto.PublicKey
}

func newTokenIssuer(key crypto.Signer, issuer string) (*tokenIssuer, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *rsa.PrivateKey:
		alg = jose.RS256
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			alg = jose.ES256
		case elliptic.P384():
			alg = jose.ES384
		case elliptic.P521():
			alg = jose.ES512
		default:
			return nil, fmt.Errorf("service account key: ECDSA curve %s is not P-256, P-384 or P-521", k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("service account key: a %T is neither RSA nor ECDSA", key)
	}
	kid, err := keyID(key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg,
		Key: &jose.JSONWebKey{Algorithm: string(alg), Key: key, KeyID: kid, Use: "sig"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	return &tokenIssuer{issuer: issuer, audiences: []string{issuer}, alg: alg, signer: signer, public: key.Public()}, nil
}

// keyID is the kid header of the tokens a key signs, as Kubernetes derives
// it: the unpadded base64url SHA-256 of the public key's PKIX DER.
func keyID(public crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		return "", fmt.Errorf("service account key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// tokenClaims are a service account token's claims. aud is always an array,
// as in Kubernetes' tokens: go-jose's own Claims would write a single
// audience as a bare string.
type tokenClaims struct {
	Issuer     string           `json:"iss"`
	Subject    string           `json:"sub"`
	Audience   []string         `json:"aud"`
	Expiry     int64            `json:"exp"`
	IssuedAt   int64            `json:"iat"`
	NotBefore  int64            `json:"nbf"`
	ID         string           `json:"jti,omitempty"`
	Kubernetes kubernetesClaims `json:"kubernetes.io"`
}

// privateClaims is the part of a token that only Kubernetes reads.
type privateClaims struct {
	Kubernetes kubernetesClaims `json:"kubernetes.io"`
}

// kubernetesClaims say whose token it is and what it is bound to.
type kubernetesClaims struct {
	Namespace      string     `json:"namespace,omitempty"`
	ServiceAccount objectRef  `json:"serviceaccount"`
	Pod            *objectRef `json:"pod,omitempty"`
	Secret         *objectRef `json:"secret,omitempty"`
	Node           *objectRef `json:"node,omitempty"`
	// WarnAfter is when an extended token's asked lifetime ended.
	WarnAfter *int64 `json:"warnafter,omitempty"`
}

type objectRef struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// sign serializes claims as a compact JWS with the issuer's iss.
func (t *tokenIssuer) sign(c *tokenClaims) (string, error) {
	c.Issuer = t.issuer
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := t.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// boundObjects are what a token is bound to: a pod (and the node it runs
// on), a secret, or a node.
type boundObjects struct {
	pod, secret, node *objectRef
}

// claimsFor builds a token's claims as Kubernetes' serviceaccount.Claims does.
func claimsFor(sa *corev1.ServiceAccount, bound boundObjects, now time.Time, seconds, warnAfter int64, audiences []string) *tokenClaims {
	c := &tokenClaims{
		Subject:   serviceAccountUsername(sa.Namespace, sa.Name),
		Audience:  audiences,
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		Expiry:    now.Add(time.Duration(seconds) * time.Second).Unix(),
		ID:        uuid.NewString(),
		Kubernetes: kubernetesClaims{
			Namespace:      sa.Namespace,
			ServiceAccount: objectRef{Name: sa.Name, UID: string(sa.UID)},
			Pod:            bound.pod, Secret: bound.secret, Node: bound.node,
		},
	}
	if warnAfter != 0 {
		w := now.Add(time.Duration(warnAfter) * time.Second).Unix()
		c.Kubernetes.WarnAfter = &w
	}
	return c
}

func serviceAccountUsername(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Keys of the objects tokens name, in the store.
func serviceAccountKey(namespace, name string) string {
	return "/registry/serviceaccounts/" + namespace + "/" + name
}
func podKey(namespace, name string) string    { return "/registry/pods/" + namespace + "/" + name }
func secretKey(namespace, name string) string { return "/registry/secrets/" + namespace + "/" + name }
func nodeKey(name string) string              { return "/registry/nodes/" + name }

// getObject reads a T from the store; a missing one is the NotFound Status
// of gr, whatever resource the request was for.
func getObject[T any](ctx context.Context, st *store.Store, key string, gr schema.GroupResource, name string) (T, error) {
	var zero T
	obj, err := st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return zero, apierrors.NewNotFound(gr, name)
	}
	if err != nil {
		return zero, err
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("%s holds a %T", key, obj)
	}
	return t, nil
}

// serviceAccountToken serves serviceaccounts/token: a TokenRequest answered
// with a signed token, as kube-apiserver's TokenREST does.
func (s *Server) serviceAccountToken(q *request) error {
	if s.tokens == nil {
		return apierrors.NewServiceUnavailable("serviceaccounts/token needs a service account signing key, which this server was not given")
	}
	out, err := s.codecs.negotiate(q.r, &authenticationv1.TokenRequest{})
	if err != nil {
		return err
	}
	data, err := readBody(q.r)
	if err != nil {
		return err
	}
	obj, err := s.decodeObject(q, data, tokenRequestGVK, &authenticationv1.TokenRequest{})
	if err != nil {
		return err
	}
	req := obj.(*authenticationv1.TokenRequest)
	name, namespace := q.ri.Name, q.ri.Namespace
	if req.Name != "" && req.Name != name {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "name"), req.Name, "must match the service account name if specified")})
	}
	if req.Namespace != "" && req.Namespace != namespace {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "namespace"), req.Namespace, "must match the service account namespace if specified")})
	}
	sa, err := getObject[*corev1.ServiceAccount](q.ctx, s.store, serviceAccountKey(namespace, name), q.gr(), name)
	if err != nil {
		return err
	}
	if req.Spec.ExpirationSeconds == nil {
		req.Spec.ExpirationSeconds = new(int64(defaultTokenSeconds))
	}
	if len(req.Spec.Audiences) == 0 {
		req.Spec.Audiences = slices.Clone(s.tokens.audiences)
	}
	req.Name, req.Namespace = sa.Name, sa.Namespace
	now := time.Now()
	req.CreationTimestamp = metav1.NewTime(now)
	req.Status = authenticationv1.TokenRequestStatus{}
	if errs := validateTokenRequest(req); len(errs) > 0 {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), "", errs)
	}
	bound, err := s.boundObjects(q.ctx, name, namespace, req.Spec.BoundObjectRef)
	if err != nil {
		return err
	}
	seconds, warnAfter := *req.Spec.ExpirationSeconds, int64(0)
	if bound.pod != nil && seconds == warnOnlyTokenSeconds && s.isOwnAudience(req.Spec.Audiences) {
		seconds, warnAfter = extendedTokenSeconds, warnOnlyTokenSeconds
	}
	tok, err := s.tokens.sign(claimsFor(sa, bound, now, seconds, warnAfter, req.Spec.Audiences))
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("failed to generate token: %w", err))
	}
	req.Status = authenticationv1.TokenRequestStatus{
		Token:               tok,
		ExpirationTimestamp: metav1.NewTime(now.Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second)),
	}
	for _, w := range q.warnings {
		q.w.Header().Add("Warning", fmt.Sprintf("299 - %q", w))
	}
	s.writeObject(q.w, q.r, http.StatusCreated, req, out)
	return nil
}

// validateTokenRequest is kube-apiserver's static validation of a
// TokenRequest. Attestations need a webhook configuration to bind to, which
// skiff does not serve, so any are refused.
func validateTokenRequest(req *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	secs := *req.Spec.ExpirationSeconds
	if secs < minTokenSeconds {
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), secs, "may not specify a duration less than 10 minutes"))
	}
	if secs > maxTokenSeconds {
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), secs, "may not specify a duration larger than 2^32 seconds"))
	}
	if len(req.Spec.Attestations) > 0 {
		if ref := req.Spec.BoundObjectRef; ref == nil {
			errs = append(errs, field.Invalid(spec.Child("attestations"), "", "attestations may not be specified without a bound object reference"))
		} else {
			errs = append(errs, field.Invalid(spec.Child("attestations"), ref.Kind, fmt.Sprintf("attestations may not be specified when bound object ref is of kind %s", ref.Kind)))
		}
	}
	return errs
}

// isOwnAudience reports whether every audience is one of the API server's.
func (s *Server) isOwnAudience(audiences []string) bool {
	for _, a := range audiences {
		if !slices.Contains(s.tokens.audiences, a) {
			return false
		}
	}
	return true
}

// boundObjects looks up what a TokenRequest binds its token to, with
// kube-apiserver's errors: the object's NotFound, 400 for a pod of another
// service account or a kind that cannot be bound, 409 for a stale UID.
func (s *Server) boundObjects(ctx context.Context, saName, namespace string, ref *authenticationv1.BoundObjectReference) (boundObjects, error) {
	var bound boundObjects
	if ref == nil {
		return bound, nil
	}
	gvk := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
	var uid types.UID
	switch {
	case gvk.Group == "" && gvk.Kind == "Pod":
		pod, err := getObject[*corev1.Pod](ctx, s.store, podKey(namespace, ref.Name), schema.GroupResource{Resource: "pods"}, ref.Name)
		if err != nil {
			return bound, err
		}
		if pod.Spec.ServiceAccountName != saName {
			return bound, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", saName))
		}
		uid = pod.UID
		bound.pod = &objectRef{Name: pod.Name, UID: string(pod.UID)}
		if pod.Spec.NodeName != "" {
			// A node that is not (or no longer) registered still names
			// the pod's node in the claims, without a UID.
			bound.node = &objectRef{Name: pod.Spec.NodeName}
			node, err := getObject[*corev1.Node](ctx, s.store, nodeKey(pod.Spec.NodeName), schema.GroupResource{Resource: "nodes"}, pod.Spec.NodeName)
			switch {
			case err == nil:
				bound.node.UID = string(node.UID)
			case !apierrors.IsNotFound(err):
				return bound, apierrors.NewInternalError(err)
			}
		}
	case gvk.Group == "" && gvk.Kind == "Node":
		node, err := getObject[*corev1.Node](ctx, s.store, nodeKey(ref.Name), schema.GroupResource{Resource: "nodes"}, ref.Name)
		if err != nil {
			return bound, err
		}
		uid = node.UID
		bound.node = &objectRef{Name: node.Name, UID: string(node.UID)}
	case gvk.Group == "" && gvk.Kind == "Secret":
		secret, err := getObject[*corev1.Secret](ctx, s.store, secretKey(namespace, ref.Name), schema.GroupResource{Resource: "secrets"}, ref.Name)
		if err != nil {
			return bound, err
		}
		uid = secret.UID
		bound.secret = &objectRef{Name: secret.Name, UID: string(secret.UID)}
	default:
		return bound, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s", gvk.String()))
	}
	if ref.UID != "" && uid != ref.UID {
		return bound, apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, ref.Name,
			fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
	}
	return bound, nil
}
