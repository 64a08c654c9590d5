package kubeletapi

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// logOptions is what a containerLogs request asks for: the kubelet's
// reading of PodLogOptions.
type logOptions struct {
	follow     bool
	previous   bool
	tail       int64     // whole lines from the end; -1 for all
	since      time.Time // zero for no bound
	timestamps bool
	limit      int64 // bytes; 0 for no limit
}

// errInvalidLogOptions marks options that decode but are not valid.
var errInvalidLogOptions = errors.New("invalid log options")

// parseLogOptions decodes the query the API server sends. It checks what
// kube-apiserver's ValidatePodLogOptions checks.
func parseLogOptions(q url.Values, now time.Time) (logOptions, error) {
	o := logOptions{tail: -1}
	var err error
	boolean := func(key string, dst *bool) {
		if v := q.Get(key); v != "" && err == nil {
			*dst, err = strconv.ParseBool(v)
		}
	}
	integer := func(key string, dst *int64) bool {
		v := q.Get(key)
		if v == "" || err != nil {
			return false
		}
		*dst, err = strconv.ParseInt(v, 10, 64)
		return err == nil
	}
	boolean("follow", &o.follow)
	boolean("previous", &o.previous)
	boolean("timestamps", &o.timestamps)
	hasTail := integer("tailLines", &o.tail)
	hasLimit := integer("limitBytes", &o.limit)
	var sinceSeconds int64
	hasSinceSeconds := integer("sinceSeconds", &sinceSeconds)
	hasSinceTime := false
	if v := q.Get("sinceTime"); v != "" && err == nil {
		o.since, err = time.Parse(time.RFC3339, v)
		hasSinceTime = err == nil
	}
	if err != nil {
		return o, err
	}

	switch {
	case hasTail && o.tail < 0,
		hasLimit && o.limit < 1,
		hasSinceSeconds && sinceSeconds < 1,
		hasSinceSeconds && hasSinceTime:
		return o, errInvalidLogOptions
	}
	if hasSinceSeconds {
		o.since = now.Add(-time.Duration(sinceSeconds) * time.Second)
	}
	return o, nil
}

// containerLogs serves GET /containerLogs/{namespace}/{pod}/{container}.
func (s *server) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := parseLogOptions(r.URL.Query(), time.Now())
	switch {
	case errors.Is(err, errInvalidLogOptions):
		// The kubelet's replies, word for word.
		httpError(w, http.StatusUnprocessableEntity, `{"message": "Invalid request."}`)
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, `{"message": "Unable to decode query."}`)
		return
	}

	ctx := r.Context()
	id, path, err := s.pods.Container(ctx, ns, pod, container, opts.previous)
	if opts.previous && errors.Is(err, ErrNotFound) {
		// As the kubelet: an unknown container is a 404, a known one
		// without a previous instance a 400.
		if _, _, cerr := s.pods.Container(ctx, ns, pod, container, false); !errors.Is(cerr, ErrNotFound) {
			httpError(w, http.StatusBadRequest, "previous terminated container %q in pod %q not found", container, pod)
			return
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		httpError(w, http.StatusNotFound, "container %q not found in pod %q", container, pod)
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}

	f, err := openLog(path)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	flush := func() { _ = rc.Flush() }
	running := func() bool { return s.pods.Running(ctx, id) }
	// The status is sent: a failure from here on can only cut the body short.
	if err := copyLog(ctx, f, path, opts, running, w, flush); err != nil && ctx.Err() == nil {
		s.log.Debug("container log copy ended early", "namespace", ns, "pod", pod, "container", container, "err", err)
	}
}
