package apiserver

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/internal/store"
)

// bookmarkInterval is how often an idle watch that allows bookmarks is told
// the current resourceVersion.
const bookmarkInterval = time.Minute

// watchEncoder writes watch events in the negotiated framing.
type watchEncoder struct {
	s       *Server
	q       *request
	out     output
	enc     streaming.Encoder
	flusher http.Flusher
	buf     bytes.Buffer
}

func (e *watchEncoder) send(typ watch.EventType, obj runtime.Object) error {
	return e.writeEvent(typ, e.view(obj))
}

// view turns an object into what the client asked for: the object, a Table
// row or its metadata.
func (e *watchEncoder) view(obj runtime.Object) runtime.Object {
	switch e.out.As {
	case "Table":
		return e.s.table(e.q, []runtime.Object{obj}, e.out)
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		return partialMetadata(obj)
	}
	if _, isStatus := obj.(*metav1.Status); !isStatus {
		obj = obj.DeepCopyObject()
		obj.GetObjectKind().SetGroupVersionKind(e.q.res.GroupVersionKind())
	}
	return obj
}

func (e *watchEncoder) bookmark(rv int64, initialEnd bool) error {
	var obj runtime.Object
	switch e.out.As {
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		obj = &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	case "Table":
		obj = &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}}
	default:
		obj = e.q.res.New()
		obj.GetObjectKind().SetGroupVersionKind(e.q.res.GroupVersionKind())
	}
	if t, ok := obj.(*metav1.Table); ok {
		t.ResourceVersion = strconv.FormatInt(rv, 10)
		return e.writeEvent(watch.Bookmark, t)
	}
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(rv, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return e.writeEvent(watch.Bookmark, obj)
}

// writeEvent encodes one event whose object is already in its final form.
func (e *watchEncoder) writeEvent(typ watch.EventType, obj runtime.Object) error {
	e.buf.Reset()
	if err := e.out.Info.Serializer.Encode(obj, &e.buf); err != nil {
		return err
	}
	ev := &metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: bytes.TrimRight(e.buf.Bytes(), "\n")}}
	if err := e.enc.Encode(ev); err != nil {
		return err
	}
	e.flusher.Flush()
	return nil
}

type watchParams struct {
	rv                int64
	rvSet             bool
	sendInitialEvents *bool
	bookmarks         bool
	timeout           time.Duration
}

func parseWatchParams(q *request) (watchParams, error) {
	v := q.r.URL.Query()
	p := watchParams{bookmarks: v.Get("allowWatchBookmarks") == "true"}
	if rv := v.Get("resourceVersion"); rv != "" {
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			return p, badRequest("invalid resourceVersion %q", rv)
		}
		p.rv, p.rvSet = n, n != 0
	}
	if sie := v.Get("sendInitialEvents"); sie != "" {
		b := sie == "true"
		p.sendInitialEvents = &b
		if b {
			var errs field.ErrorList
			if v.Get("resourceVersionMatch") != string(metav1.ResourceVersionMatchNotOlderThan) {
				errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
			}
			if !p.bookmarks {
				errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "sendInitialEvents requires setting allowWatchBookmarks to true"))
			}
			if len(errs) > 0 {
				return p, apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind(), "", errs)
			}
		}
	}
	// Like kube-apiserver: the client's timeout, or 30 to 60 minutes.
	p.timeout = time.Duration(1800+rand.IntN(1800)) * time.Second
	if t := v.Get("timeoutSeconds"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			return p, badRequest("invalid timeoutSeconds %q", t)
		}
		if n > 0 {
			p.timeout = time.Duration(n) * time.Second
		}
	}
	return p, nil
}

// watch streams changes. With no resourceVersion (or "0"), or with
// sendInitialEvents=true, it first sends the current objects as ADDED
// events; with sendInitialEvents it then marks their end with a bookmark.
func (s *Server) watch(q *request) error {
	out, err := s.codecs.negotiate(q.r, q.res.New())
	if err != nil {
		return err
	}
	sel, err := s.parseSelection(q)
	if err != nil {
		return err
	}
	p, err := parseWatchParams(q)
	if err != nil {
		return err
	}
	match := s.matcher(q.res, sel)
	matches := func(obj runtime.Object) bool { return obj != nil && (match == nil || match(obj)) }

	initial := p.sendInitialEvents != nil && *p.sendInitialEvents || p.sendInitialEvents == nil && !p.rvSet
	var items []runtime.Object
	from := p.rv
	if initial {
		res, err := s.store.List(q.ctx, q.listPrefix(), store.ListOptions{Match: match})
		if err != nil {
			return err
		}
		items, from = res.Items, res.Revision
		if p.rvSet && from < p.rv {
			from = p.rv
		}
	}
	w, err := s.store.Watch(q.ctx, q.res.Key(), q.listPrefix(), from)
	if err != nil {
		return err
	}
	defer w.Stop()
	if s.cfg.Observer != nil {
		defer s.cfg.Observer.WatchStarted(q.ri.Group, q.ri.Resource)()
	}

	flusher, ok := q.w.(http.Flusher)
	if !ok {
		return errors.New("streaming unsupported")
	}
	info := out.Info
	if info.StreamSerializer == nil {
		info = s.codecs.json
		out = output{Media: mediaJSON, As: out.As, Info: info}
	}
	ct := out.Media
	if out.Media == mediaProtobuf {
		ct = mediaProtobuf + ";stream=watch"
	}
	q.w.Header().Set("Content-Type", ct)
	q.w.Header().Set("Transfer-Encoding", "chunked")
	q.w.WriteHeader(http.StatusOK)
	fw := info.StreamSerializer.Framer.NewFrameWriter(q.w)
	enc := &watchEncoder{s: s, q: q, out: out, flusher: flusher, enc: streaming.NewEncoder(fw, info.StreamSerializer.Serializer)}
	flusher.Flush()

	for _, it := range items {
		if err := enc.send(watch.Added, it); err != nil {
			return nil
		}
	}
	lastRV := from
	if p.sendInitialEvents != nil && *p.sendInitialEvents {
		if err := enc.bookmark(from, true); err != nil {
			return nil
		}
	}
	timeout := time.NewTimer(p.timeout)
	defer timeout.Stop()
	ticker := time.NewTicker(bookmarkInterval)
	defer ticker.Stop()
	for {
		select {
		case <-q.ctx.Done():
			return nil
		case <-timeout.C:
			return nil
		case <-ticker.C:
			if !p.bookmarks {
				continue
			}
			if rv := s.store.ResourceRevision(q.res.Key()); rv > lastRV {
				if err := enc.bookmark(rv, false); err != nil {
					return nil
				}
				lastRV = rv
			}
		case e, ok := <-w.Events():
			if !ok {
				return nil
			}
			if e.Type == watch.Error {
				st := toStatus(e.Err, q.gr(), "").ErrStatus
				st.Kind, st.APIVersion = "Status", "v1"
				enc.send(watch.Error, &st)
				return nil
			}
			typ, obj := translateEvent(e, matches)
			if typ == "" {
				continue
			}
			if err := enc.send(typ, obj); err != nil {
				return nil
			}
			lastRV = e.Revision
		}
	}
}

// translateEvent applies a selector to a change: an object that starts to
// match is ADDED, one that stops matching is DELETED, as in Kubernetes.
func translateEvent(e store.Event, matches func(runtime.Object) bool) (watch.EventType, runtime.Object) {
	switch e.Type {
	case watch.Added:
		if matches(e.Object) {
			return watch.Added, e.Object
		}
	case watch.Modified:
		cur, prev := matches(e.Object), matches(e.Prev)
		switch {
		case cur && prev:
			return watch.Modified, e.Object
		case cur:
			return watch.Added, e.Object
		case prev:
			return watch.Deleted, e.Object
		}
	case watch.Deleted:
		if matches(e.Prev) {
			return watch.Deleted, e.Object
		}
	}
	return "", nil
}
