package apiserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

type userKey struct{}

// UserFrom returns the authenticated user of a request context.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// publicPaths answer without credentials, as kube-apiserver's
// system:public-info-viewer role allows.
var publicPaths = map[string]bool{"/healthz": true, "/livez": true, "/readyz": true, "/version": true, "/version/": true}

// authenticate accepts a client certificate signed by the cluster CA (the
// TLS layer verified it), a known bearer token or a service account token
// this server signed; anything else gets 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := s.userOf(r); ok {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
			return
		}
		if publicPaths[r.URL.Path] || strings.HasPrefix(r.URL.Path, "/healthz/") || strings.HasPrefix(r.URL.Path, "/livez/") || strings.HasPrefix(r.URL.Path, "/readyz/") {
			next.ServeHTTP(w, r)
			return
		}
		s.writeError(w, r, apierrors.NewUnauthorized("Unauthorized"))
	})
}

func (s *Server) userOf(r *http.Request) (User, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		return User{Name: c.Subject.CommonName, Groups: append([]string{"system:authenticated"}, c.Subject.Organization...)}, true
	}
	auth := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
		tok = strings.TrimSpace(tok)
		for known, u := range s.cfg.Tokens {
			if subtle.ConstantTimeCompare([]byte(known), []byte(tok)) == 1 {
				u.Groups = append([]string{"system:authenticated"}, u.Groups...)
				return u, true
			}
		}
		u, err := s.serviceAccountUser(r.Context(), tok)
		if err == nil {
			return u, true
		}
		if !errors.Is(err, errNotServiceAccountToken) {
			s.log.Debug("service account token refused", "err", err)
		}
	}
	return User{}, false
}
