package apiserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/store"
)

const adminToken = "token-test-admin"

var (
	rsaKeyOnce sync.Once
	rsaKey     *rsa.PrivateKey
)

// testRSAKey is one RSA key for the whole package: generating one per test
// would cost more than the tests.
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// tokenServer is an API server over a real store that issues and accepts
// service account tokens, with a /whoami page that shows who a request is.
type tokenServer struct {
	*Server
	st  *store.Store
	url string
}

func newTokenServer(t *testing.T, key crypto.Signer) *tokenServer {
	t.Helper()
	ds, err := etcd.Open(context.Background(), etcd.Config{DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	st := store.New(ds.Client, store.NewJSONCodec(registry.Scheme), nil, nil)
	meta := func(name, uid string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid)}
	}
	objects := map[string]runtime.Object{
		"/registry/serviceaccounts/default/default": &corev1.ServiceAccount{ObjectMeta: meta("default", "sa-default")},
		"/registry/serviceaccounts/default/robot":   &corev1.ServiceAccount{ObjectMeta: meta("robot", "sa-robot")},
		"/registry/pods/default/web": &corev1.Pod{ObjectMeta: meta("web", "pod-web"),
			Spec: corev1.PodSpec{ServiceAccountName: "default", NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		"/registry/pods/default/robots": &corev1.Pod{ObjectMeta: meta("robots", "pod-robots"),
			Spec: corev1.PodSpec{ServiceAccountName: "robot", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		"/registry/pods/default/lost": &corev1.Pod{ObjectMeta: meta("lost", "pod-lost"),
			Spec: corev1.PodSpec{ServiceAccountName: "default", NodeName: "gone", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		"/registry/nodes/n1":          &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "node-n1"}},
		"/registry/secrets/default/s": &corev1.Secret{ObjectMeta: meta("s", "secret-s")},
	}
	for key, obj := range objects {
		storeObject(t, st, key, obj)
	}
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		json.NewEncoder(w).Encode(u)
	})
	s := New(Config{Tokens: map[string]User{adminToken: {Name: "admin"}}, ServiceAccountKey: key,
		Private: map[string]http.Handler{"/whoami": whoami}}, st, registry.All())
	if s.tokens == nil {
		t.Fatal("the server issues no service account tokens")
	}
	api := httptest.NewServer(s.Handler())
	t.Cleanup(api.Close)
	return &tokenServer{Server: s, st: st, url: api.URL}
}

// storeObject creates obj under key with its kind set, as the API stores it.
func storeObject(t *testing.T, st *store.Store, key string, obj runtime.Object) {
	t.Helper()
	gvks, _, err := registry.Scheme.ObjectKinds(obj)
	if err != nil {
		t.Fatal(err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	if _, err := st.Create(context.Background(), key, obj); err != nil {
		t.Fatal(err)
	}
}

// do sends a request with a bearer token and returns the response and body.
func (ts *tokenServer) do(t *testing.T, method, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

// requestToken posts a TokenRequest for a service account of default and
// fails the test unless it is created.
func (ts *tokenServer) requestToken(t *testing.T, sa, body string) *authenticationv1.TokenRequest {
	t.Helper()
	resp, data := ts.do(t, http.MethodPost, "/api/v1/namespaces/default/serviceaccounts/"+sa+"/token", adminToken, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("token request: %d %s", resp.StatusCode, data)
	}
	var tr authenticationv1.TokenRequest
	if err := json.Unmarshal(data, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Kind != "TokenRequest" || tr.APIVersion != "authentication.k8s.io/v1" || tr.Status.Token == "" {
		t.Fatalf("reply %s", data)
	}
	return &tr
}

// jwtParts decodes a JWT's header and payload without checking anything.
func jwtParts(t *testing.T, token string) (header, payload map[string]any, rawPayload string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", token)
	}
	decode := func(s string, into *map[string]any) string {
		data, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if err := d.Decode(into); err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	decode(parts[0], &header)
	rawPayload = decode(parts[1], &payload)
	return header, payload, rawPayload
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v is not a number", v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// whoami is who the server takes a bearer token for; ok is false on 401.
func (ts *tokenServer) whoami(t *testing.T, token string) (User, bool) {
	t.Helper()
	resp, data := ts.do(t, http.MethodGet, "/whoami", token, "")
	if resp.StatusCode == http.StatusUnauthorized {
		return User{}, false
	}
	var u User
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &u) != nil {
		t.Fatalf("whoami: %d %s", resp.StatusCode, data)
	}
	return u, true
}

func TestTokenRequestForPodSignsKubernetesClaims(t *testing.T) {
	ts := newTokenServer(t, testRSAKey(t))
	before := time.Now().Truncate(time.Second)
	tr := ts.requestToken(t, "default", `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",
		"spec":{"expirationSeconds":600,"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"web","uid":"pod-web"}}}`)
	if tr.Name != "default" || tr.Namespace != "default" || tr.CreationTimestamp.IsZero() {
		t.Errorf("metadata %+v", tr.ObjectMeta)
	}
	if len(tr.Spec.Audiences) != 1 || tr.Spec.Audiences[0] != DefaultServiceAccountIssuer || *tr.Spec.ExpirationSeconds != 600 {
		t.Errorf("spec %+v", tr.Spec)
	}
	if exp := tr.Status.ExpirationTimestamp.Time; exp.Before(before.Add(600*time.Second)) || exp.After(time.Now().Add(601*time.Second)) {
		t.Errorf("expirationTimestamp %v, want about 10 minutes from now", exp)
	}

	header, claims, raw := jwtParts(t, tr.Status.Token)
	kid, _ := keyID(testRSAKey(t).Public())
	if header["alg"] != "RS256" || header["kid"] != kid {
		t.Errorf("header %v, want RS256 with kid %s", header, kid)
	}
	if claims["iss"] != DefaultServiceAccountIssuer || claims["sub"] != "system:serviceaccount:default:default" {
		t.Errorf("iss %v sub %v", claims["iss"], claims["sub"])
	}
	// A single audience is still an array, as in Kubernetes' tokens.
	if !strings.Contains(raw, `"aud":["`+DefaultServiceAccountIssuer+`"]`) {
		t.Errorf("aud is not [%q]: %s", DefaultServiceAccountIssuer, raw)
	}
	iat, nbf, exp := num(t, claims["iat"]), num(t, claims["nbf"]), num(t, claims["exp"])
	if iat < before.Unix() || nbf != iat || exp != iat+600 || exp != tr.Status.ExpirationTimestamp.Unix() {
		t.Errorf("iat %d nbf %d exp %d, expirationTimestamp %v", iat, nbf, exp, tr.Status.ExpirationTimestamp)
	}
	if jti, _ := claims["jti"].(string); len(jti) != 36 {
		t.Errorf("jti %v is not a UUID", claims["jti"])
	}
	k8s, _ := json.Marshal(claims["kubernetes.io"])
	want := `{"namespace":"default","node":{"name":"n1","uid":"node-n1"},"pod":{"name":"web","uid":"pod-web"},"serviceaccount":{"name":"default","uid":"sa-default"}}`
	if string(k8s) != want {
		t.Errorf("kubernetes.io claim\n got %s\nwant %s", k8s, want)
	}

	// The same request through client-go, as the node agent and kubectl
	// create token send it.
	client, err := kubernetes.NewForConfig(&rest.Config{Host: ts.url, BearerToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.CoreV1().ServiceAccounts("default").CreateToken(context.Background(), "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}, BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "lost"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, claims, raw = jwtParts(t, got.Status.Token)
	if num(t, claims["exp"])-num(t, claims["iat"]) != 3600 || !strings.Contains(raw, `"aud":["vault"]`) {
		t.Errorf("default lifetime and asked audience: %s", raw)
	}
	// The pod's node is not registered: its name is still claimed.
	if k8s, _ := json.Marshal(claims["kubernetes.io"]); !strings.Contains(string(k8s), `"node":{"name":"gone"}`) {
		t.Errorf("kubernetes.io claim %s", k8s)
	}
}

func TestTokenRequestExtendsTheCredentialsVolumeLifetime(t *testing.T) {
	ts := newTokenServer(t, testRSAKey(t))
	bound := `"boundObjectRef":{"kind":"Pod","name":"web"}`
	tr := ts.requestToken(t, "default", `{"spec":{"expirationSeconds":3607,`+bound+`}}`)
	_, claims, _ := jwtParts(t, tr.Status.Token)
	iat := num(t, claims["iat"])
	warnAfter := num(t, claims["kubernetes.io"].(map[string]any)["warnafter"])
	if exp := num(t, claims["exp"]); exp != iat+365*24*3600 || warnAfter != iat+3607 {
		t.Errorf("exp %d warnafter %d, want a year and 3607s after %d", exp, warnAfter, iat)
	}
	if got := tr.Status.ExpirationTimestamp.Unix(); got != iat+3607 {
		t.Errorf("expirationTimestamp %d, want the asked %d", got, iat+3607)
	}
	// Not for tokens meant for someone else, nor without a pod.
	for _, body := range []string{
		`{"spec":{"expirationSeconds":3607,"audiences":["vault"],` + bound + `}}`,
		`{"spec":{"expirationSeconds":3607}}`,
	} {
		_, claims, _ := jwtParts(t, ts.requestToken(t, "default", body).Status.Token)
		if num(t, claims["exp"])-num(t, claims["iat"]) != 3607 || claims["kubernetes.io"].(map[string]any)["warnafter"] != nil {
			t.Errorf("%s: extended: %v", body, claims)
		}
	}
}

func TestTokenRequestErrorsAreKubernetesStatuses(t *testing.T) {
	ts := newTokenServer(t, testRSAKey(t))
	const path = "/api/v1/namespaces/default/serviceaccounts/"
	for _, c := range []struct {
		name, sa, body string
		code           int
		message        string
	}{
		{"unknown service account", "nobody", `{"spec":{}}`, 404, `serviceaccounts "nobody" not found`},
		{"bound pod missing", "default", `{"spec":{"boundObjectRef":{"kind":"Pod","name":"gone"}}}`, 404, `pods "gone" not found`},
		{"bound pod recreated", "default", `{"spec":{"boundObjectRef":{"kind":"Pod","name":"web","uid":"old"}}}`, 409,
			`Operation cannot be fulfilled on Pod "web": the UID in the bound object reference (old) does not match the UID in record. The object might have been deleted and then recreated`},
		{"pod of another account", "robot", `{"spec":{"boundObjectRef":{"kind":"Pod","name":"web"}}}`, 400,
			`cannot bind token for serviceaccount "robot" to pod running with different serviceaccount name.`},
		{"unbindable kind", "default", `{"spec":{"boundObjectRef":{"kind":"ConfigMap","apiVersion":"v1","name":"c"}}}`, 400,
			`cannot bind token to object of type /v1, Kind=ConfigMap`},
		{"bound secret missing", "default", `{"spec":{"boundObjectRef":{"kind":"Secret","name":"nope"}}}`, 404, `secrets "nope" not found`},
		{"too short", "default", `{"spec":{"expirationSeconds":60}}`, 422,
			`TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes`},
		{"too long", "default", `{"spec":{"expirationSeconds":4294967297}}`, 422, `may not specify a duration larger than 2^32 seconds`},
		{"name mismatch", "default", `{"metadata":{"name":"robot"},"spec":{}}`, 422,
			`TokenRequest.authentication.k8s.io "default" is invalid: metadata.name: Invalid value: "robot": must match the service account name if specified`},
		{"wrong kind", "default", `{"apiVersion":"v1","kind":"ServiceAccount"}`, 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, data := ts.do(t, http.MethodPost, path+c.sa+"/token", adminToken, c.body)
			var st metav1.Status
			if err := json.Unmarshal(data, &st); err != nil || st.Kind != "Status" {
				t.Fatalf("reply %d is not a Status: %s", resp.StatusCode, data)
			}
			if resp.StatusCode != c.code || !strings.Contains(st.Message, c.message) {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, st.Message, c.code, c.message)
			}
		})
	}
	resp, _ := ts.do(t, http.MethodGet, path+"default/token", adminToken, "")
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET serviceaccounts/token: %d", resp.StatusCode)
	}
}

func TestServiceAccountTokenAuthenticatesUntilItsPodIsGone(t *testing.T) {
	ts := newTokenServer(t, testRSAKey(t))
	tok := ts.requestToken(t, "default", `{"spec":{"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"web","uid":"pod-web"}}}`).Status.Token

	resp, data := ts.do(t, http.MethodGet, "/api/v1/namespaces/default/pods", tok, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), `"name":"web"`) {
		t.Fatalf("list pods with the token: %d %s", resp.StatusCode, data)
	}
	u, ok := ts.whoami(t, tok)
	if !ok {
		t.Fatal("whoami: 401")
	}
	if u.Name != "system:serviceaccount:default:default" || u.UID != "sa-default" ||
		strings.Join(u.Groups, ",") != "system:serviceaccounts,system:serviceaccounts:default,system:authenticated" {
		t.Errorf("user %+v", u)
	}
	if e := u.Extra; len(e) != 5 || e[extraPodName][0] != "web" || e[extraPodUID][0] != "pod-web" ||
		e[extraNodeName][0] != "n1" || e[extraNodeUID][0] != "node-n1" || !strings.HasPrefix(e[extraCredentialID][0], "JTI=") {
		t.Errorf("extra %v", u.Extra)
	}

	// A pod recreated under the same name is another pod.
	if _, err := ts.st.Delete(context.Background(), "/registry/pods/default/web", nil); err != nil {
		t.Fatal(err)
	}
	resp, data = ts.do(t, http.MethodGet, "/api/v1/namespaces/default/pods", tok, "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after the pod was deleted: %d %s", resp.StatusCode, data)
	}
	var st metav1.Status
	if json.Unmarshal(data, &st); st.Reason != metav1.StatusReasonUnauthorized {
		t.Errorf("401 body %s", data)
	}
	storeObject(t, ts.st, "/registry/pods/default/web", &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "pod-web-2"}, Spec: corev1.PodSpec{ServiceAccountName: "default"}})
	if _, ok := ts.whoami(t, tok); ok {
		t.Error("a token of the deleted pod authenticates for the new one")
	}
	// Health stays public whatever the token.
	if resp, _ := ts.do(t, http.MethodGet, "/healthz", tok, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with a refused token: %d", resp.StatusCode)
	}
}

func TestServiceAccountTokenStopsWithItsAccountOrSecret(t *testing.T) {
	ts := newTokenServer(t, testRSAKey(t))
	unbound := ts.requestToken(t, "robot", `{"spec":{}}`).Status.Token
	secretBound := ts.requestToken(t, "default", `{"spec":{"boundObjectRef":{"kind":"Secret","name":"s","uid":"secret-s"}}}`).Status.Token
	for _, tok := range []string{unbound, secretBound} {
		if _, ok := ts.whoami(t, tok); !ok {
			t.Fatal("a fresh token is refused")
		}
	}
	if u, _ := ts.whoami(t, unbound); u.Name != "system:serviceaccount:default:robot" || u.Extra[extraPodName] != nil {
		t.Errorf("unbound token's user %+v", u)
	}
	ts.st.Delete(context.Background(), "/registry/secrets/default/s", nil)
	if _, ok := ts.whoami(t, secretBound); ok {
		t.Error("the token outlived its secret")
	}
	// An account deleted and made again has another UID.
	ts.st.Delete(context.Background(), "/registry/serviceaccounts/default/robot", nil)
	storeObject(t, ts.st, "/registry/serviceaccounts/default/robot", &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: "default", UID: "sa-robot-2"}})
	if _, ok := ts.whoami(t, unbound); ok {
		t.Error("the token outlived its service account")
	}
}

func TestBadServiceAccountTokensAreUnauthorized(t *testing.T) {
	ts := newTokenServer(t, testRSAKey(t))
	good := func() *tokenClaims {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default", UID: "sa-default"}}
		return claimsFor(sa, boundObjects{}, time.Now(), 600, 0, []string{DefaultServiceAccountIssuer})
	}
	sign := func(issuer *tokenIssuer, edit func(*tokenClaims)) string {
		c := good()
		edit(c)
		tok, err := issuer.sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, ok := ts.whoami(t, sign(ts.tokens, func(*tokenClaims) {})); !ok {
		t.Fatal("the control token is refused")
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, err := newTokenIssuer(otherKey, DefaultServiceAccountIssuer)
	if err != nil {
		t.Fatal(err)
	}
	valid := sign(ts.tokens, func(*tokenClaims) {})
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(mustDecode(t, parts[1]), []byte(`"default","uid"`), []byte(`"robot","uid"`), 1)) + "." + parts[2]
	hour := int64(time.Hour / time.Second)
	for name, tok := range map[string]string{
		"garbage":          "not-a-jwt",
		"three dots":       "a.b.c",
		"unsigned":         parts[0] + "." + parts[1] + ".",
		"alg none":         base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		"tampered claims":  tampered,
		"wrong key":        sign(other, func(*tokenClaims) {}),
		"expired":          sign(ts.tokens, func(c *tokenClaims) { c.IssuedAt -= 2 * hour; c.NotBefore -= 2 * hour; c.Expiry -= hour }),
		"not yet valid":    sign(ts.tokens, func(c *tokenClaims) { c.NotBefore += hour }),
		"issued in future": sign(ts.tokens, func(c *tokenClaims) { c.IssuedAt += hour; c.NotBefore += hour; c.Expiry += hour }),
		"other audience":   sign(ts.tokens, func(c *tokenClaims) { c.Audience = []string{"vault"} }),
		"unknown account":  sign(ts.tokens, func(c *tokenClaims) { c.Kubernetes.ServiceAccount.Name = "nobody" }),
		"stale account":    sign(ts.tokens, func(c *tokenClaims) { c.Kubernetes.ServiceAccount.UID = "old" }),
		"no account":       sign(ts.tokens, func(c *tokenClaims) { c.Kubernetes = kubernetesClaims{} }),
		"missing pod":      sign(ts.tokens, func(c *tokenClaims) { c.Kubernetes.Pod = &objectRef{Name: "gone", UID: "x"} }),
		"missing node":     sign(ts.tokens, func(c *tokenClaims) { c.Kubernetes.Node = &objectRef{Name: "gone", UID: "x"} }),
	} {
		t.Run(name, func(t *testing.T) {
			if u, ok := ts.whoami(t, tok); ok {
				t.Errorf("authenticated as %+v", u)
			}
			resp, _ := ts.do(t, http.MethodGet, "/api/v1/namespaces/default/pods", tok, "")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("list pods: %d", resp.StatusCode)
			}
		})
	}
	// Another issuer's token, signed with this key, is not this server's.
	ts2 := &tokenIssuer{issuer: "https://elsewhere", audiences: ts.tokens.audiences, alg: ts.tokens.alg, signer: ts.tokens.signer, public: ts.tokens.public}
	if _, ok := ts.whoami(t, sign(ts2, func(*tokenClaims) {})); ok {
		t.Error("a token of another issuer authenticates")
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestServiceAccountTokensWithAnECDSAKey(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts := newTokenServer(t, key)
	tok := ts.requestToken(t, "default", `{"spec":{"boundObjectRef":{"kind":"Pod","name":"web"}}}`).Status.Token
	if header, _, _ := jwtParts(t, tok); header["alg"] != "ES256" {
		t.Errorf("header %v", header)
	}
	if u, ok := ts.whoami(t, tok); !ok || u.Name != "system:serviceaccount:default:default" {
		t.Errorf("user %+v %v", u, ok)
	}
}

func TestTokenSubresourceWithoutKeyIsUnavailable(t *testing.T) {
	s := New(Config{Tokens: map[string]User{adminToken: {Name: "admin"}}}, nil, registry.All())
	api := httptest.NewServer(s.Handler())
	defer api.Close()
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/api/v1/namespaces/default/serviceaccounts/default/token", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503", resp.StatusCode)
	}
	// A JWT-looking token is simply unknown.
	if _, err := s.serviceAccountUser(context.Background(), "a.b.c"); err == nil {
		t.Error("a token was accepted without a key")
	}
}

func TestDiscoveryListsServiceAccountTokens(t *testing.T) {
	s := newDecodeServer()
	var found bool
	for _, r := range s.discovery.resources["v1"].APIResources {
		if r.Name == "serviceaccounts/token" {
			found = true
			if r.Group != "authentication.k8s.io" || r.Version != "v1" || r.Kind != "TokenRequest" || strings.Join(r.Verbs, ",") != "create" || !r.Namespaced {
				t.Errorf("serviceaccounts/token: %+v", r)
			}
		}
	}
	if !found {
		t.Error("serviceaccounts/token is not in /api/v1")
	}
	if !strings.Contains(string(s.discovery.core), `"subresource":"token","responseKind":{"group":"authentication.k8s.io","version":"v1","kind":"TokenRequest"},"verbs":["create"]`) {
		t.Error("aggregated discovery lacks serviceaccounts/token")
	}
}

func TestServiceAccountKeyIsCreatedOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tls", "service-account.key")
	first, err := LoadOrCreateServiceAccountKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := first.(*rsa.PrivateKey); !ok {
		t.Errorf("created a %T, want RSA", first)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := LoadOrCreateServiceAccountKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !first.(*rsa.PrivateKey).Equal(again) {
		t.Error("the kept key was replaced")
	}

	// Keys made elsewhere (openssl, kubeadm) are read too.
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPath := filepath.Join(t.TempDir(), "sa.key")
	os.WriteFile(ecPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	got, err := LoadOrCreateServiceAccountKey(ecPath)
	if err != nil || !ec.Equal(got) {
		t.Errorf("PKCS#8 ECDSA key: %v %v", got, err)
	}
	os.WriteFile(ecPath, []byte("nonsense"), 0o600)
	if _, err := LoadOrCreateServiceAccountKey(ecPath); err == nil {
		t.Error("a file without a key was accepted")
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := newTokenIssuer(ed, DefaultServiceAccountIssuer); err == nil {
		t.Error("an Ed25519 key was accepted")
	}
}
