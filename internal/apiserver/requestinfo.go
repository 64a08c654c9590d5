package apiserver

import (
	"net/http"
	"strings"
)

// requestInfo is what a resource request's path says.
type requestInfo struct {
	// APIPrefix is "api" or "apis".
	APIPrefix   string
	Group       string
	Version     string
	Namespace   string
	Resource    string
	Name        string
	Subresource string
	// Verb is the Kubernetes verb: get, list, watch, create, update, patch,
	// delete, deletecollection.
	Verb string
}

// parseRequestInfo reads /api/v1/..., /apis/<g>/<v>/... paths. It returns
// ok=false for paths that are not resource requests (discovery, health).
func parseRequestInfo(r *http.Request) (requestInfo, bool) {
	parts := splitPath(r.URL.Path)
	var ri requestInfo
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		ri.APIPrefix, ri.Version = "api", parts[1]
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		ri.APIPrefix, ri.Group, ri.Version = "apis", parts[1], parts[2]
		parts = parts[3:]
	default:
		return ri, false
	}
	watchPath := false
	if len(parts) > 0 && parts[0] == "watch" {
		// The deprecated /watch/ path prefix.
		watchPath = true
		parts = parts[1:]
	}
	// namespaces/<ns>/<resource>/... unless the resource is namespaces itself.
	nsSubresource := len(parts) == 3 && parts[0] == "namespaces" && (parts[2] == "status" || parts[2] == "finalize")
	if len(parts) >= 3 && parts[0] == "namespaces" && !nsSubresource {
		ri.Namespace = parts[1]
		parts = parts[2:]
	} else if len(parts) >= 1 && parts[0] == "namespaces" {
		ri.Resource = "namespaces"
		if len(parts) >= 2 {
			ri.Name = parts[1]
		}
		parts = nil
	}
	if ri.Resource == "" {
		if len(parts) == 0 {
			return ri, false
		}
		ri.Resource = parts[0]
		if len(parts) >= 2 {
			ri.Name = parts[1]
		}
		if len(parts) >= 3 {
			ri.Subresource = parts[2]
		}
		if len(parts) > 3 {
			return ri, false
		}
	} else if ri.Namespace != "" && ri.Resource == "" {
		return ri, false
	}
	// /api/v1/namespaces/<name>/status and /finalize.
	if ri.Resource == "namespaces" && ri.Namespace == "" {
		p := splitPath(r.URL.Path)
		idx := 2
		if ri.APIPrefix == "apis" {
			idx = 3
		}
		rest := p[idx:]
		if len(rest) > 0 && rest[0] == "watch" {
			rest = rest[1:]
		}
		if len(rest) == 3 {
			ri.Subresource = rest[2]
		} else if len(rest) > 3 {
			return ri, false
		}
	}
	ri.Verb = verbFor(r, ri, watchPath)
	return ri, true
}

func verbFor(r *http.Request, ri requestInfo, watchPath bool) string {
	q := r.URL.Query()
	isWatch := watchPath || q.Get("watch") == "true" || q.Get("watch") == "1"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if ri.Name == "" {
			if isWatch {
				return "watch"
			}
			return "list"
		}
		if isWatch {
			return "watch"
		}
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		if ri.Name == "" {
			return "deletecollection"
		}
		return "delete"
	}
	return strings.ToLower(r.Method)
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
