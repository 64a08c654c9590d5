package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/store"
)

const prefix = "/registry/configmaps/"

func newStore(t *testing.T) *store.Store {
	t.Helper()
	ds, err := etcd.Open(context.Background(), etcd.Config{DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	s := store.New(ds.Client, store.NewJSONCodec(clientgoscheme.Scheme), nil, nil)
	if err := s.StartWatching(context.Background(), prefix); err != nil {
		t.Fatal(err)
	}
	return s
}

func cm(name, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: map[string]string{"v": value}}
}

func rv(obj runtime.Object) string { return obj.(*corev1.ConfigMap).ResourceVersion }

func TestCreateTwiceIsAlreadyExistsAndRVIsTheRevision(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, err := s.Create(ctx, prefix+"ns/a", cm("a", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, prefix+"ns/a", cm("a", "2")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	got, err := s.Get(ctx, prefix+"ns/a")
	if err != nil || rv(got) != rv(a) {
		t.Fatalf("get: %v rv %s want %s", err, rv(got), rv(a))
	}
	rev, _ := s.Revision(ctx)
	if fmt.Sprint(rev) != rv(a) {
		t.Errorf("resourceVersion %s is not the etcd revision %d", rv(a), rev)
	}
}

func TestUpdateWithNoChangeKeepsTheResourceVersion(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, _ := s.Create(ctx, prefix+"ns/a", cm("a", "1"))
	same, err := s.Update(ctx, prefix+"ns/a", func(cur runtime.Object) (runtime.Object, error) { return cur, nil }, nil)
	if err != nil || rv(same) != rv(a) {
		t.Fatalf("no-op update: %v, rv %s → %s", err, rv(a), rv(same))
	}
	changed, err := s.Update(ctx, prefix+"ns/a", func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data["v"] = "2"
		return cur, nil
	}, nil)
	if err != nil || rv(changed) == rv(a) {
		t.Fatalf("update: %v, rv unchanged %s", err, rv(changed))
	}
}

func TestListPagesAtOneRevision(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := range 25 {
		s.Create(ctx, fmt.Sprintf("%sns/cm-%02d", prefix, i), cm(fmt.Sprintf("cm-%02d", i), "x"))
	}
	var names []string
	res, err := s.List(ctx, prefix, store.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	first := res.Revision
	// A write between pages is not seen by the paged list.
	s.Create(ctx, prefix+"ns/cm-99", cm("cm-99", "late"))
	for {
		for _, it := range res.Items {
			names = append(names, it.(*corev1.ConfigMap).Name)
		}
		if res.Continue == "" {
			break
		}
		if res, err = s.List(ctx, prefix, store.ListOptions{Limit: 10, Continue: res.Continue}); err != nil {
			t.Fatal(err)
		}
		if res.Revision != first {
			t.Fatalf("page at revision %d, first at %d", res.Revision, first)
		}
	}
	if len(names) != 25 || names[0] != "cm-00" || names[24] != "cm-24" {
		t.Fatalf("paged names: %v", names)
	}
}

func collect(t *testing.T, w *store.Watcher, n int) []store.Event {
	t.Helper()
	var out []store.Event
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case e, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch closed after %d events", len(out))
			}
			out = append(out, e)
		case <-timeout:
			t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	return out
}

func TestWatchFromARevisionDeliversLaterChangesInOrder(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, _ := s.Create(ctx, prefix+"ns/a", cm("a", "1"))
	s.Update(ctx, prefix+"ns/a", func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data["v"] = "2"
		return cur, nil
	}, nil)
	s.Delete(ctx, prefix+"ns/a", nil)
	var from int64
	fmt.Sscan(rv(a), &from)
	// From the create's revision: the update and the delete, from memory.
	w, err := s.Watch(ctx, prefix, prefix+"ns/", from)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	evs := collect(t, w, 2)
	if evs[0].Type != watch.Modified || evs[1].Type != watch.Deleted {
		t.Fatalf("events: %v %v", evs[0].Type, evs[1].Type)
	}
	if evs[1].Object.(*corev1.ConfigMap).Data["v"] != "2" {
		t.Errorf("a deletion carries the last state")
	}
	// From before the hub started: served by etcd directly.
	w2, err := s.Watch(ctx, prefix, prefix+"ns/", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	evs = collect(t, w2, 3)
	if evs[0].Type != watch.Added || evs[2].Type != watch.Deleted {
		t.Fatalf("events from etcd: %v %v %v", evs[0].Type, evs[1].Type, evs[2].Type)
	}
}

func TestWatchFromACompactedRevisionIsExpired(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := range 5 {
		s.Create(ctx, fmt.Sprintf("%sns/c%d", prefix, i), cm(fmt.Sprintf("c%d", i), "x"))
	}
	rev, _ := s.Revision(ctx)
	if err := s.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	_, err := s.Watch(ctx, "/registry/other/", "/registry/other/", 2)
	if !errors.Is(err, store.ErrExpired) {
		t.Fatalf("watch from a compacted revision: %v", err)
	}
	if _, err := s.List(ctx, prefix, store.ListOptions{Revision: 2}); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("list at a compacted revision: %v", err)
	}
}
